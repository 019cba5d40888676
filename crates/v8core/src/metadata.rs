//! V8's postmortem metadata (`v8dbg_*`) and Node's (`nodedbg_*`), indexed the way the readers
//! ask for it.
//!
//! Nothing about the heap is hard-coded: instance types and frame types move every major, and
//! Node 22 renamed field symbols (`class_Map__constructor_or_back_pointer__Object` became
//! `…__Tagged_Object_`), so fields are keyed by `(Class, field)` without the type suffix.
//!
//! - `v8dbg_*` are constants in `.data`/`.bss`: read from the binary file, so they are there
//!   even when the core lacks the page; every one the core does hold is compared with the file.
//! - `nodedbg_*` are filled by a static constructor at startup (the file says 0): read from
//!   the core's copy of `.data`/`.bss` only, and absent when the core lacks the page.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::binary::{NodeBinary, decode};
use crate::core::Core;
use crate::error::{Error, Result};

/// The metadata of the build that wrote a core.
#[derive(Clone, Debug)]
pub struct Metadata {
    binary: PathBuf,
    /// Every value by full symbol name (`v8dbg_TaggedSize`), from the file or, for
    /// `nodedbg_*`, from the core.
    symbols: BTreeMap<String, i64>,
    /// Plain `v8dbg_<name>` constants (`TaggedSize`, `prop_desc_size`, `SmiShiftSize`, …).
    constants: HashMap<String, i64>,
    /// `v8dbg_class_<Class>__<field>__<type>` by class, then field.
    fields: HashMap<String, HashMap<String, Field>>,
    /// `v8dbg_type_<Class>__<TYPE>` by `TYPE`, and back.
    types: HashMap<String, u16>,
    type_names: HashMap<u16, String>,
    frame_types: HashMap<String, i64>,
    frame_names: HashMap<i64, String>,
    fp_offsets: HashMap<String, i64>,
    /// `nodedbg_offset_*` and `nodedbg_const_*` by class, then field.
    node_offsets: HashMap<String, HashMap<String, Field>>,
    node_constants: HashMap<String, HashMap<String, Field>>,
    node_missing: Vec<String>,
    checked: usize,
}

/// One field symbol: its offset and the type named in the symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Field {
    value: i64,
    ty: String,
    /// Two symbols for the field (`__Object` and `__HeapObject`) gave different values.
    conflict: bool,
}

impl Metadata {
    /// Reads every `v8dbg_*` value from the binary and every `nodedbg_*` value from the core,
    /// and refuses builds this crate cannot read (no metadata, pointer compression).
    pub fn load(core: &Core<'_>, binary: &NodeBinary) -> Result<Metadata> {
        let mut meta = Metadata {
            binary: binary.path().to_owned(),
            symbols: BTreeMap::new(),
            constants: HashMap::new(),
            fields: HashMap::new(),
            types: HashMap::new(),
            type_names: HashMap::new(),
            frame_types: HashMap::new(),
            frame_names: HashMap::new(),
            fp_offsets: HashMap::new(),
            node_offsets: HashMap::new(),
            node_constants: HashMap::new(),
            node_missing: Vec::new(),
            checked: 0,
        };
        let mut differ = (0, None);
        for sym in &binary.symbols {
            // Every value is an `int` but Node's offsets (`uintptr_t`); a symbol without a
            // size is taken as an `int`.
            let size = if matches!(sym.size, 1 | 2 | 4 | 8) {
                sym.size as usize
            } else {
                4
            };
            let in_core = core
                .read(binary.bias().wrapping_add(sym.vaddr), size)
                .and_then(decode);
            let value = if let Some(name) = sym.name.strip_prefix("nodedbg_") {
                let Some(value) = in_core else {
                    meta.node_missing.push(sym.name.clone());
                    continue;
                };
                meta.add_node(name, value);
                value
            } else if let Some(name) = sym.name.strip_prefix("v8dbg_") {
                let Some(value) = binary.initial_value(sym.vaddr, size) else {
                    continue;
                };
                if let Some(v) = in_core {
                    meta.checked += 1;
                    if v != value {
                        differ.0 += 1;
                        differ.1.get_or_insert((sym.name.clone(), v, value));
                    }
                }
                meta.add_v8(name, value);
                value
            } else {
                continue;
            };
            meta.symbols.insert(sym.name.clone(), value);
        }
        if let (n, Some((name, in_core, in_file))) = differ {
            return Err(Error::BinaryMismatch {
                mapped: binary.mapped_path().to_owned(),
                file: binary.path().to_owned(),
                what: format!(
                    "{n} of {} V8 metadata values in the core differ from the file's, e.g. {name} is {in_core} in the core and {in_file} in the file",
                    meta.checked
                ),
            });
        }
        meta.check()?;
        Ok(meta)
    }

    fn check(&self) -> Result<()> {
        if !self.symbols.keys().any(|k| k.starts_with("v8dbg_")) {
            return Err(Error::NoMetadata {
                binary: self.binary.clone(),
            });
        }
        let tagged_size = self.require("v8dbg_TaggedSize", self.constant("TaggedSize"))?;
        if tagged_size != 8 {
            return Err(Error::PointerCompression {
                binary: self.binary.clone(),
                tagged_size,
            });
        }
        Ok(())
    }

    fn add_v8(&mut self, name: &str, value: i64) {
        if let Some(rest) = name.strip_prefix("class_") {
            if let Some((class, field, ty)) = member(rest) {
                add_field(&mut self.fields, class, field, ty, value);
            }
        } else if let Some(rest) = name.strip_prefix("type_") {
            let (Some((_class, ty)), Ok(v)) = (rest.split_once("__"), u16::try_from(value)) else {
                return;
            };
            self.types.insert(ty.to_owned(), v);
            // Several names for one number would be aliases; keep the first in name order.
            let e = self.type_names.entry(v).or_insert_with(|| ty.to_owned());
            if ty < e.as_str() {
                ty.clone_into(e);
            }
        } else if let Some(frame) = name.strip_prefix("frametype_") {
            self.frame_types.insert(frame.to_owned(), value);
            self.frame_names.insert(value, frame.to_owned());
        } else if let Some(slot) = name.strip_prefix("off_fp_") {
            self.fp_offsets.insert(slot.to_owned(), value);
        } else if !name.starts_with("parent_") {
            self.constants.insert(name.to_owned(), value);
        }
    }

    fn add_node(&mut self, name: &str, value: i64) {
        let (table, rest) = if let Some(rest) = name.strip_prefix("offset_") {
            (&mut self.node_offsets, rest)
        } else if let Some(rest) = name.strip_prefix("const_") {
            (&mut self.node_constants, rest)
        } else {
            return;
        };
        if let Some((class, field, ty)) = member(rest) {
            add_field(table, class, field, ty, value);
        }
    }

    /// The binary the metadata was read from.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// A value by its full symbol name (`v8dbg_TaggedSize`, `nodedbg_offset_…`).
    pub fn symbol(&self, name: &str) -> Option<i64> {
        self.symbols.get(name).copied()
    }

    /// Every value by full symbol name, sorted by name.
    pub fn symbols(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.symbols.iter().map(|(k, &v)| (k.as_str(), v))
    }

    /// A plain constant: `v8dbg_<name>` that is not a class, type, frame or parent symbol
    /// (`TaggedSize`, `HeapObjectTag`, `prop_desc_size`, `bit_field3_number_of_own_descriptors_mask`).
    pub fn constant(&self, name: &str) -> Option<i64> {
        self.constants.get(name).copied()
    }

    /// The byte offset of `field` in objects of `class`, whatever the symbol's type suffix;
    /// `None` when absent, or when two spellings of it disagree.
    pub fn field(&self, class: &str, field: &str) -> Option<i64> {
        let f = self.fields.get(class)?.get(field)?;
        (!f.conflict).then_some(f.value)
    }

    /// The type the symbol names for a field (`uint16_t`, `Object`, `Tagged_Object_`); the
    /// first spelling when there are several.
    pub fn field_type(&self, class: &str, field: &str) -> Option<&str> {
        Some(&self.fields.get(class)?.get(field)?.ty)
    }

    /// An instance type's number by its name (`MAP_TYPE`, `JS_OBJECT_TYPE`).
    pub fn instance_type(&self, name: &str) -> Option<u16> {
        self.types.get(name).copied()
    }

    /// An instance type's name by its number.
    pub fn instance_type_name(&self, number: u16) -> Option<&str> {
        self.type_names.get(&number).map(String::as_str)
    }

    /// Every exported instance type, by name (unordered).
    pub fn instance_types(&self) -> impl Iterator<Item = (&str, u16)> + '_ {
        self.types.iter().map(|(k, &v)| (k.as_str(), v))
    }

    /// A stack frame type's marker by its name (`EntryFrame`, `InterpretedFrame`).
    pub fn frame_type(&self, name: &str) -> Option<i64> {
        self.frame_types.get(name).copied()
    }

    /// A stack frame type's name by its marker.
    pub fn frame_type_name(&self, marker: i64) -> Option<&str> {
        self.frame_names.get(&marker).map(String::as_str)
    }

    /// A frame-pointer-relative slot (`context`, `function`, `bytecode_array`, `args`).
    pub fn fp_offset(&self, slot: &str) -> Option<i64> {
        self.fp_offsets.get(slot).copied()
    }

    /// A Node C++ field offset (`nodedbg_offset_<Class>__<field>__<type>`, e.g.
    /// `("Environment", "req_wrap_queue_")`), as the running process set it.
    pub fn node_offset(&self, class: &str, field: &str) -> Option<i64> {
        let f = self.node_offsets.get(class)?.get(field)?;
        (!f.conflict).then_some(f.value)
    }

    /// A Node constant (`nodedbg_const_<Class>__<name>__<type>`, e.g.
    /// `("BaseObject", "kInternalFieldCount")`), as the running process set it.
    pub fn node_constant(&self, class: &str, name: &str) -> Option<i64> {
        let f = self.node_constants.get(class)?.get(name)?;
        (!f.conflict).then_some(f.value)
    }

    /// The `nodedbg_*` symbols whose page the core lacks: their runtime values are unknown.
    pub fn node_missing(&self) -> &[String] {
        &self.node_missing
    }

    /// How many `v8dbg_*` values the core holds too (all equal to the file's, or loading
    /// would have failed).
    pub fn values_checked(&self) -> usize {
        self.checked
    }

    /// `value`, or an error naming the missing metadata and the binary: for the readers'
    /// set-up, `meta.require("Map.instance_type", meta.field("Map", "instance_type"))?`.
    pub fn require<T>(&self, name: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| Error::MissingMetadata {
            binary: self.binary.clone(),
            name: name.to_owned(),
        })
    }
}

fn add_field(
    table: &mut HashMap<String, HashMap<String, Field>>,
    class: &str,
    field: &str,
    ty: &str,
    value: i64,
) {
    let fields = table.entry(class.to_owned()).or_default();
    match fields.get_mut(field) {
        Some(f) => f.conflict |= f.value != value,
        None => {
            fields.insert(
                field.to_owned(),
                Field {
                    value,
                    ty: ty.to_owned(),
                    conflict: false,
                },
            );
        }
    }
}

/// Splits `<Class>__<field>__<type>` (the type may be missing). A field may end in `_`
/// (Node's `req_wrap_queue_` gives `…__req_wrap_queue___Environment_ReqWrapQueue`): the field
/// ends at the first `__` that is followed by something other than `_`.
fn member(s: &str) -> Option<(&str, &str, &str)> {
    let (class, rest) = s.split_once("__")?;
    let b = rest.as_bytes();
    let end = (1..b.len().saturating_sub(2))
        .find(|&i| b[i] == b'_' && b[i + 1] == b'_' && b[i + 2] != b'_');
    Some(match end {
        Some(i) => (class, &rest[..i], &rest[i + 2..]),
        None => (class, rest, ""),
    })
}

#[cfg(test)]
mod tests {
    use super::member;

    #[test]
    fn members_split_without_their_type() {
        assert_eq!(
            member("Map__instance_type__uint16_t"),
            Some(("Map", "instance_type", "uint16_t"))
        );
        assert_eq!(
            member("Map__constructor_or_back_pointer__Tagged_Object_"),
            Some(("Map", "constructor_or_back_pointer", "Tagged_Object_"))
        );
        assert_eq!(
            member("Environment__req_wrap_queue___Environment_ReqWrapQueue"),
            Some(("Environment", "req_wrap_queue_", "Environment_ReqWrapQueue"))
        );
        assert_eq!(
            member("ListNode_HandleWrap__next___uintptr_t"),
            Some(("ListNode_HandleWrap", "next_", "uintptr_t"))
        );
        assert_eq!(
            member("Map__instance_descriptors_offset"),
            Some(("Map", "instance_descriptors_offset", ""))
        );
        assert_eq!(member("NoSeparator"), None);
        assert_eq!(member("A__"), Some(("A", "", "")));
        assert_eq!(member("A__b__"), Some(("A", "b__", "")));
    }
}
