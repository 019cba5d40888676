//! The binaries a core maps, read from the files on disk: their symbols (to name native frames)
//! and their `.eh_frame` (to unwind through them, in [`unwind`](crate::unwind)).
//!
//! Cores leave file-backed text out (the kernel always, gcore for some mappings), so everything
//! about code comes from the files, which are checked against the core first: a file whose
//! build id differs from the one in the core's copy of its header is another build, and is not
//! used (its frames stay unnamed, and the walk says so). The node binary is the one
//! [`NodeBinary`] already checked, wherever it lies (`--node`).
//!
//! An address is placed by its mapping, not by a load bias: the file offset it was mapped from
//! gives the link-time address through the file's `PT_LOAD`s. V8 maps node's embedded builtins
//! a second time, near its code range (short builtin calls); the same arithmetic names a
//! return address in that copy `Builtins_…`, as in the original.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use object::LittleEndian as LE;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym as _};

use crate::binary::{MappedImage, NodeBinary};
use crate::core::Core;

/// Every ELF file the core maps, by the path the core names it with.
pub(crate) struct Images<'n> {
    by_path: HashMap<PathBuf, Result<Image<'n>, String>>,
}

/// A binary file: its loaded segments, sorted function symbols and unwind sections.
pub(crate) struct Image<'n> {
    data: Bytes<'n>,
    /// The separate debug file (`/usr/lib/debug/.build-id/…`) whose `.symtab` names what the
    /// stripped file's `.dynsym` does not (libc's `start_thread`), when installed.
    debug: Option<Mmap>,
    loads: Vec<Load>,
    /// Function symbols sorted by address.
    symbols: Vec<Symbol>,
    pub(crate) eh: Option<EhSections>,
}

/// Where a code address lies: in which file, at which link-time address.
#[derive(Clone, Copy)]
pub(crate) struct Place<'i, 'n> {
    pub(crate) image: &'i Image<'n>,
    /// The address as the file's headers and tables know it.
    pub(crate) vaddr: u64,
}

/// `.eh_frame` and `.eh_frame_hdr`: their link-time addresses and where the file has them.
#[derive(Clone, Debug)]
pub(crate) struct EhSections {
    pub(crate) eh_frame: (u64, std::ops::Range<usize>),
    pub(crate) eh_frame_hdr: Option<(u64, std::ops::Range<usize>)>,
    /// `.text`'s address, a base some pointer encodings use.
    pub(crate) text: u64,
}

enum Bytes<'n> {
    Borrowed(&'n [u8]),
    Mapped(Mmap),
}

#[derive(Clone, Copy, Debug)]
struct Load {
    vaddr: u64,
    offset: u64,
    filesz: u64,
}

#[derive(Clone, Copy, Debug)]
struct Symbol {
    addr: u64,
    size: u64,
    /// File offset of the NUL-terminated name.
    name: u64,
    /// The name is in the debug file.
    in_debug: bool,
}

/// The longest symbol name read; longer ones are cut (a mangled C++ template can be huge).
const MAX_NAME: usize = 4096;

impl<'n> Images<'n> {
    /// Opens every ELF file the core maps at file offset 0; the node binary is taken from
    /// `node` (already checked). Files that cannot be used are remembered with the reason.
    pub(crate) fn load(core: &Core<'_>, node: &'n NodeBinary) -> Images<'n> {
        let mut by_path = HashMap::new();
        for m in core.mappings() {
            if m.offset != 0 || by_path.contains_key(&m.path) {
                continue;
            }
            let image = if m.path == node.mapped_path() {
                Image::parse(Bytes::Borrowed(node.bytes()))
            } else {
                open_checked(core, &m.path)
            };
            by_path.insert(m.path.clone(), image);
        }
        // A binary mapped only in parts (never at offset 0) is not an image we can place.
        Images { by_path }
    }

    /// The file and link-time address of a code address, when a file is mapped there.
    pub(crate) fn place<'i>(&'i self, core: &'i Core<'_>, addr: u64) -> Option<Place<'i, 'n>> {
        let m = core.mapping_at(addr)?;
        let image = self.by_path.get(&m.path)?.as_ref().ok()?;
        let offset = m.offset.checked_add(addr - m.start)?;
        let vaddr = image.vaddr_of_offset(offset)?;
        Some(Place { image, vaddr })
    }

    /// Why the file mapped at `addr` cannot be used, if it cannot.
    pub(crate) fn problem(&self, core: &Core<'_>, addr: u64) -> Option<(&Path, &str)> {
        let m = core.mapping_at(addr)?;
        let (path, image) = self.by_path.get_key_value(&m.path)?;
        image.as_ref().err().map(|e| (path.as_path(), e.as_str()))
    }

    /// `len` bytes at `addr` from the file mapped there (for what a kernel core leaves out:
    /// read-only data such as the sources of node's built-in modules).
    pub(crate) fn read(&self, core: &Core<'_>, addr: u64, len: usize) -> Option<&[u8]> {
        let m = core.mapping_at(addr)?;
        if addr.checked_add(len as u64)? > m.end {
            return None;
        }
        let image = self.by_path.get(&m.path)?.as_ref().ok()?;
        let offset = m.offset.checked_add(addr - m.start)? as usize;
        image.data().get(offset..offset.checked_add(len)?)
    }
}

impl Image<'_> {
    fn parse(data: Bytes<'_>) -> Result<Image<'_>, String> {
        let d = match &data {
            Bytes::Borrowed(b) => *b,
            Bytes::Mapped(m) => &m[..],
        };
        let header = elf::FileHeader64::<LE>::parse(d).map_err(|e| e.to_string())?;
        if header.e_machine(LE) != elf::EM_X86_64 {
            return Err("not an x86-64 binary".to_owned());
        }
        let phdrs = header.program_headers(LE, d).map_err(|e| e.to_string())?;
        let loads = phdrs
            .iter()
            .filter(|ph| ph.p_type(LE) == elf::PT_LOAD)
            .map(|ph| Load {
                vaddr: ph.p_vaddr(LE),
                offset: ph.p_offset(LE),
                filesz: ph.p_filesz(LE),
            })
            .collect();
        let sections = header.sections(LE, d).map_err(|e| e.to_string())?;
        let mut symbols = function_symbols(&sections, d, false);
        let stripped = sections.iter().all(|sh| sh.sh_type(LE) != elf::SHT_SYMTAB);
        let debug = stripped.then(|| debug_file(d)).flatten();
        if let Some(debug) = &debug
            && let Ok(h) = elf::FileHeader64::<LE>::parse(&debug[..])
            && let Ok(debug_sections) = h.sections(LE, &debug[..])
        {
            symbols.extend(function_symbols(&debug_sections, debug, true));
        }
        sort_symbols(&mut symbols);
        let range = |sh: &elf::SectionHeader64<LE>| {
            let start = sh.sh_offset(LE) as usize;
            let end = start.checked_add(sh.sh_size(LE) as usize)?;
            (sh.sh_type(LE) != elf::SHT_NOBITS && end <= d.len()).then_some(start..end)
        };
        let section = |name: &[u8]| {
            let (_, sh) = sections.section_by_name(LE, name)?;
            Some((sh.sh_addr(LE), range(sh)?))
        };
        let eh = section(b".eh_frame").map(|eh_frame| EhSections {
            eh_frame,
            eh_frame_hdr: section(b".eh_frame_hdr"),
            text: section(b".text").map_or(0, |(addr, _)| addr),
        });
        Ok(Image {
            data,
            debug,
            loads,
            symbols,
            eh,
        })
    }

    /// The whole file.
    pub(crate) fn data(&self) -> &[u8] {
        match &self.data {
            Bytes::Borrowed(b) => b,
            Bytes::Mapped(m) => m,
        }
    }

    fn vaddr_of_offset(&self, offset: u64) -> Option<u64> {
        let l = self
            .loads
            .iter()
            .find(|l| l.offset <= offset && offset - l.offset < l.filesz)?;
        l.vaddr.checked_add(offset - l.offset)
    }

    /// The raw (mangled) name of the function symbol that covers `vaddr`, and the offset of
    /// `vaddr` in it. A symbol without a size covers up to the next one.
    pub(crate) fn symbol(&self, vaddr: u64) -> Option<(&str, u64)> {
        let i = self.symbols.partition_point(|s| s.addr <= vaddr);
        let s = self.symbols.get(i.checked_sub(1)?)?;
        let end = if s.size > 0 {
            s.addr.saturating_add(s.size)
        } else {
            self.symbols.get(i).map_or(u64::MAX, |next| next.addr)
        };
        if vaddr >= end {
            return None;
        }
        let start = s.name as usize;
        let names = match (&self.debug, s.in_debug) {
            (Some(debug), true) => &debug[..],
            _ => self.data(),
        };
        let bytes = names.get(start..)?;
        let bytes = &bytes[..bytes.len().min(MAX_NAME)];
        let len = memchr(bytes).unwrap_or(bytes.len());
        let name = std::str::from_utf8(&bytes[..len]).ok()?;
        Some((name, vaddr - s.addr))
    }
}

/// The initial value of a 4-byte data symbol of an ELF file (`.symtab`, else `.dynsym`), read
/// from the file: e.g. V8's `Version::major_`.
pub(crate) fn symbol_u32(d: &[u8], name: &str) -> Option<u32> {
    let header = elf::FileHeader64::<LE>::parse(d).ok()?;
    let sections = header.sections(LE, d).ok()?;
    let phdrs = header.program_headers(LE, d).ok()?;
    for sh_type in [elf::SHT_SYMTAB, elf::SHT_DYNSYM] {
        let Ok(table) = sections.symbols(LE, d, sh_type) else {
            continue;
        };
        let strings = table.strings();
        let Some(sym) = table
            .iter()
            .find(|s| s.st_size(LE) == 4 && s.name(LE, strings) == Ok(name.as_bytes()))
        else {
            continue;
        };
        let vaddr = sym.st_value(LE);
        let ph = phdrs.iter().find(|ph| {
            ph.p_type(LE) == elf::PT_LOAD
                && ph.p_vaddr(LE) <= vaddr
                && vaddr.saturating_add(4) <= ph.p_vaddr(LE).saturating_add(ph.p_filesz(LE))
        })?;
        let at = ph.p_offset(LE).checked_add(vaddr - ph.p_vaddr(LE))? as usize;
        return Some(u32::from_le_bytes(
            d.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ));
    }
    None
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

/// Opens a file the core names, only a regular file, and only the build the core holds (when
/// the core has the build id of its image).
fn open_checked<'n>(core: &Core<'_>, mapped: &Path) -> Result<Image<'n>, String> {
    let on_disk = without_deleted(mapped);
    let meta = std::fs::metadata(&on_disk).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    let file = File::open(&on_disk).map_err(|e| e.to_string())?;
    // SAFETY: a read-only private map of a binary, never written through; a file replaced
    // under us would fault, as it would for the processes running it.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| e.to_string())?;
    if map.len() < 4 || map[..4] != elf::ELFMAG {
        return Err("not an ELF file".to_owned());
    }
    let in_core = MappedImage::find(core, mapped).and_then(|i| i.build_id);
    if let Some(want) = in_core {
        match build_id(&map) {
            Some(id) if id == want.0 => {}
            _ => return Err("the file on disk is another build than the core's".to_owned()),
        }
    }
    Image::parse(Bytes::Mapped(map))
}

/// The GNU build id in a file's `PT_NOTE` segments.
fn build_id(d: &[u8]) -> Option<Vec<u8>> {
    let header = elf::FileHeader64::<LE>::parse(d).ok()?;
    let phdrs = header.program_headers(LE, d).ok()?;
    phdrs.iter().find_map(|ph| {
        let mut notes = ph.notes(LE, d).ok()??;
        while let Ok(Some(note)) = notes.next() {
            if note.name() == elf::ELF_NOTE_GNU && note.n_type(LE) == elf::NT_GNU_BUILD_ID {
                return Some(note.desc().to_vec());
            }
        }
        None
    })
}

/// The separate debug file of a stripped binary, by its build id, where distributions install
/// them (Debian's `libc6-dbg`): only a regular file.
fn debug_file(d: &[u8]) -> Option<Mmap> {
    let id = build_id(d)?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    if hex.len() < 4 {
        return None;
    }
    let path = format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
    let file = File::open(&path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    // SAFETY: as for the binaries: read-only, never written through.
    let map = unsafe { Mmap::map(&file) }.ok()?;
    (build_id(&map).as_ref() == Some(&id)).then_some(map)
}

/// The defined function symbols of `.symtab` and `.dynsym` (node has both, libc only the
/// latter).
fn function_symbols(
    sections: &object::read::elf::SectionTable<'_, elf::FileHeader64<LE>>,
    d: &[u8],
    in_debug: bool,
) -> Vec<Symbol> {
    let mut out = Vec::new();
    for sh_type in [elf::SHT_SYMTAB, elf::SHT_DYNSYM] {
        let Ok(table) = sections.symbols(LE, d, sh_type) else {
            continue;
        };
        let Ok(strtab) = sections.section(table.string_section()) else {
            continue;
        };
        let strtab = strtab.sh_offset(LE);
        for sym in table.iter() {
            let kind = sym.st_type();
            if !(kind == elf::STT_FUNC || kind == elf::STT_GNU_IFUNC)
                || sym.st_shndx(LE) == elf::SHN_UNDEF
                || sym.st_value(LE) == 0
            {
                continue;
            }
            out.push(Symbol {
                addr: sym.st_value(LE),
                size: sym.st_size(LE),
                name: strtab.wrapping_add(u64::from(sym.st_name(LE))),
                in_debug,
            });
        }
    }
    out
}

/// Sorts by address, one symbol per address: the one with a size, then the first read (the
/// binary's own over its debug file's, `.symtab`'s over `.dynsym`'s).
fn sort_symbols(symbols: &mut Vec<Symbol>) {
    symbols.sort_by_key(|s| (s.addr, s.size == 0));
    symbols.dedup_by_key(|s| s.addr);
}

/// A C++ name without its parameters and return type (`node::SyncProcessRunner::Spawn`);
/// other names as they are. `cpp_demangle` (the crate leakhound-live names frames with too)
/// refuses names it cannot parse, which then stay mangled.
pub(crate) fn demangle(name: &str) -> String {
    if name.starts_with("_Z") {
        let options = cpp_demangle::DemangleOptions::new()
            .no_params()
            .no_return_type();
        if let Ok(symbol) = cpp_demangle::Symbol::new(name)
            && let Ok(text) = symbol.demangle_with_options(&options)
        {
            return text;
        }
    }
    name.to_owned()
}

/// A replaced file is named ` (deleted)` by the kernel; its path may hold the new build (which
/// the build id then refuses).
fn without_deleted(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_encoded_bytes();
    match bytes.strip_suffix(b" (deleted)") {
        Some(b) => crate::core::path_from_bytes(b),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_without_parameters() {
        assert_eq!(
            demangle(
                "_ZN4node17SyncProcessRunner5SpawnERKN2v820FunctionCallbackInfoINS1_5ValueEEE"
            ),
            "node::SyncProcessRunner::Spawn"
        );
        assert_eq!(demangle("epoll_wait"), "epoll_wait");
        assert_eq!(demangle("_Z"), "_Z");
    }
}
