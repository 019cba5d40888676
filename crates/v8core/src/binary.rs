//! Which binary wrote the core: the node executable or `libnode.so` among the core's file
//! mappings, where it was loaded, and whether the file on disk is that very build.
//!
//! The metadata is read from the file, so analysing a core with another build's file gives
//! wrong offsets and instance types, silently (llnode's most common support issue). Hence the
//! check: the GNU build id of the file against the one in the core's copy of the image. Kernel
//! cores may lack that page (`coredump_filter` without bit 4); then the file's segments are
//! compared with the core's mappings, and [`Metadata::load`](crate::Metadata::load) compares
//! every metadata value the core holds with the file's.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use object::LittleEndian as LE;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, Sym as _};

use crate::core::{Core, elf_kind};
use crate::error::{Error, Result};

/// x86-64's page size: mappings start and end on it.
const PAGE: u64 = 4096;

/// A GNU build id (`NT_GNU_BUILD_ID`), shown in hex as `readelf -n` does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BuildId(pub Vec<u8>);

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// How the binary was shown to be the one that wrote the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// Its build id equals the one in the core's copy of the image.
    BuildId(BuildId),
    /// The build id could not be checked (`reason`); the file's segments agree with the
    /// core's mappings, and the metadata values the core holds are compared when loaded.
    Unchecked { reason: String },
}

/// An ELF image mapped in the core, as the core alone shows it (no file is opened).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedImage {
    /// The path in the core's `NT_FILE` note.
    pub path: PathBuf,
    /// Where its file offset 0 is mapped.
    pub base: u64,
    /// What to add to its link-time addresses; `None` when the core lacks its ELF header.
    pub bias: Option<u64>,
    /// Its build id, when the core holds the header and the note.
    pub build_id: Option<BuildId>,
}

impl MappedImage {
    /// Reads the image mapped from `path` (by its mapping at file offset 0) from the core.
    pub fn find(core: &Core<'_>, path: &Path) -> Option<MappedImage> {
        let base = core.image_base(path)?.start;
        let mut image = MappedImage {
            path: path.to_owned(),
            base,
            bias: None,
            build_id: None,
        };
        // The present bytes from the base on: the header and program headers sit in the
        // first page, which kernel cores keep for ELF mappings (coredump_filter bit 4).
        let Some(bytes) = core
            .segment_at(base)
            .filter(|s| s.is_present(base))
            .and_then(|s| core.read(base, (s.present_end() - base) as usize))
        else {
            return Some(image);
        };
        let Ok(header) = elf::FileHeader64::<LE>::parse(bytes) else {
            return Some(image);
        };
        let Ok(phdrs) = header.program_headers(LE, bytes) else {
            return Some(image);
        };
        image.bias = bias(phdrs, base);
        if let Some(bias) = image.bias {
            image.build_id = phdrs
                .iter()
                .filter(|ph| ph.p_type(LE) == elf::PT_NOTE)
                .find_map(|ph| {
                    let addr = bias.wrapping_add(ph.p_vaddr(LE));
                    let notes = core.read(addr, ph.p_filesz(LE) as usize)?;
                    build_id_in(notes, ph.p_align(LE))
                });
        }
        Some(image)
    }

    /// Every ELF image the core maps (one per file mapped at offset 0 with a readable header),
    /// for naming native frames in any library.
    pub fn all(core: &Core<'_>) -> Vec<MappedImage> {
        let mut seen = std::collections::HashSet::new();
        core.mappings()
            .iter()
            .filter(|m| m.offset == 0 && seen.insert(&m.path))
            .filter_map(|m| MappedImage::find(core, &m.path))
            .filter(|i| i.bias.is_some())
            .collect()
    }
}

/// The node executable or `libnode.so` that wrote a core, mapped from disk and checked
/// against the core.
pub struct NodeBinary {
    path: PathBuf,
    mapped: PathBuf,
    map: Mmap,
    e_type: u16,
    bias: u64,
    identity: Identity,
    loads: Vec<Load>,
    pub(crate) symbols: Vec<MetaSymbol>,
}

/// A `PT_LOAD` of the binary file.
#[derive(Clone, Copy, Debug)]
struct Load {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
}

/// A `v8dbg_*` or `nodedbg_*` symbol: link-time address and size of its value.
#[derive(Clone, Debug)]
pub(crate) struct MetaSymbol {
    pub(crate) name: String,
    pub(crate) vaddr: u64,
    pub(crate) size: u64,
}

impl NodeBinary {
    /// Finds the binary that holds V8's metadata among the core's file mappings (the
    /// executable first, then `libnode.so*`), or takes `node` when given; then checks that
    /// the file is the build the core was written by.
    ///
    /// Opens only regular files named by the core (a crafted core cannot make it read a FIFO
    /// or a device), or `node`.
    pub fn find(core: &Core<'_>, node: Option<&Path>) -> Result<NodeBinary> {
        let candidates = candidates(core);
        let Some(exe) = candidates.first() else {
            return Err(Error::NoExecutable {
                core: core.path().to_owned(),
            });
        };
        if let Some(file) = node {
            let image = ElfImage::open(file)?;
            if !image.has_v8_metadata() {
                return Err(Error::NoMetadata {
                    binary: file.to_owned(),
                });
            }
            let mapped = pick_mapping(core, &candidates, file, &image).to_owned();
            return NodeBinary::verify(core, mapped, file.to_owned(), image);
        }
        // A candidate that cannot be read here (a core from another machine or container)
        // may be the one with the metadata: say so rather than "no metadata".
        let mut unreadable = None;
        for mapped in &candidates {
            let on_disk = without_deleted(mapped);
            match ElfImage::open(&on_disk) {
                Ok(image) if image.has_v8_metadata() => {
                    return NodeBinary::verify(core, mapped.clone(), on_disk, image);
                }
                Ok(_) => {}
                Err(Error::Io { source, .. }) => {
                    unreadable.get_or_insert(Error::BinaryUnreadable {
                        mapped: mapped.clone(),
                        source,
                    });
                }
                Err(e) if mapped == exe => return Err(e),
                Err(_) => {}
            }
        }
        Err(unreadable.unwrap_or_else(|| Error::NoMetadata {
            binary: without_deleted(exe),
        }))
    }

    fn verify(core: &Core<'_>, mapped: PathBuf, path: PathBuf, image: ElfImage) -> Result<Self> {
        let in_core = MappedImage::find(core, &mapped);
        let from_file = in_core.as_ref().and_then(|i| bias(image.phdrs(), i.base));
        let bias = match (in_core.as_ref().and_then(|i| i.bias), from_file) {
            (Some(b), _) | (None, Some(b)) => b,
            (None, None) if image.e_type == elf::ET_EXEC => 0,
            (None, None) => {
                return Err(Error::BinaryMismatch {
                    mapped,
                    file: path,
                    what:
                        "the core has no mapping of its first page, so its load address is unknown"
                            .to_owned(),
                });
            }
        };
        let file_id = image.build_id();
        let header_in_core = in_core.as_ref().is_some_and(|i| i.bias.is_some());
        let identity = match in_core.and_then(|i| i.build_id) {
            Some(core_id) if file_id.as_ref() == Some(&core_id) => Identity::BuildId(core_id),
            Some(core_id) => {
                return Err(Error::BuildIdMismatch {
                    mapped,
                    core_id: core_id.to_string(),
                    file: path,
                    file_id: file_id.map_or("no build id".to_owned(), |id| id.to_string()),
                });
            }
            None => {
                if let Err(what) = layout_matches(core, &mapped, &image, bias) {
                    return Err(Error::BinaryMismatch {
                        mapped,
                        file: path,
                        what,
                    });
                }
                let reason = if header_in_core {
                    "the image in the core has no build id"
                } else {
                    "the core does not hold the page of the image with its build id"
                };
                Identity::Unchecked {
                    reason: reason.to_owned(),
                }
            }
        };
        let loads = image.loads();
        let symbols = image.symbols;
        Ok(NodeBinary {
            path,
            mapped,
            map: image.map,
            e_type: image.e_type,
            bias,
            identity,
            loads,
            symbols,
        })
    }

    /// The file the metadata is read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path the core maps it under (may differ from [`path`](Self::path) with `--node`,
    /// or inside a container).
    pub fn mapped_path(&self) -> &Path {
        &self.mapped
    }

    /// What to add to a link-time address to get the address in the core: 0 for the official
    /// non-PIE `node`, the load address for `libnode.so` or a PIE build.
    pub fn bias(&self) -> u64 {
        self.bias
    }

    /// Whether it is a shared library or PIE (`ET_DYN`) rather than a fixed-address executable.
    pub fn is_relocatable(&self) -> bool {
        self.e_type == elf::ET_DYN
    }

    /// How the file was shown to be the build that wrote the core.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The whole file (for symbols and unwind tables).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// `len` bytes of the file at a link-time address; `None` outside its loaded segments
    /// or in their zero-initialised tail (`.bss`), which the file does not hold.
    pub fn read(&self, vaddr: u64, len: usize) -> Option<&[u8]> {
        let l = self.load_at(vaddr)?;
        let at = vaddr - l.vaddr;
        if at.checked_add(len as u64)? > l.filesz {
            return None;
        }
        let start = l.offset.checked_add(at)? as usize;
        self.map.get(start..start.checked_add(len)?)
    }

    /// The value of a `size`-byte little-endian integer at a link-time address, as the
    /// program starts: from the file, or 0 in `.bss`. Sign-extended from 4 bytes (V8's
    /// metadata is `int`).
    pub(crate) fn initial_value(&self, vaddr: u64, size: usize) -> Option<i64> {
        let l = self.load_at(vaddr)?;
        if vaddr - l.vaddr >= l.filesz && vaddr.checked_add(size as u64)? <= l.vaddr + l.memsz {
            return Some(0);
        }
        decode(self.read(vaddr, size)?)
    }

    fn load_at(&self, vaddr: u64) -> Option<&Load> {
        self.loads
            .iter()
            .find(|l| l.vaddr <= vaddr && vaddr - l.vaddr < l.memsz)
    }
}

/// A little-endian integer of 1, 2, 4 or 8 bytes, sign-extended (V8's metadata is `int`,
/// Node's offsets `uintptr_t`, which never reach the sign bit).
pub(crate) fn decode(b: &[u8]) -> Option<i64> {
    Some(match b.len() {
        1 => i64::from(b[0] as i8),
        2 => i64::from(i16::from_le_bytes(b.try_into().ok()?)),
        4 => i64::from(i32::from_le_bytes(b.try_into().ok()?)),
        8 => i64::from_le_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// A binary file on disk, parsed enough to check it and read its metadata symbols.
struct ElfImage {
    map: Mmap,
    e_type: u16,
    phoff: u64,
    phnum: usize,
    symbols: Vec<MetaSymbol>,
}

impl ElfImage {
    fn open(path: &Path) -> Result<ElfImage> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        let file = File::open(path).map_err(io)?;
        // SAFETY: a read-only map of a binary, never written through; a binary replaced under
        // us would fault, as it would for the processes running it.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let damaged = |what: String| Error::Damaged {
            path: path.to_owned(),
            what,
        };
        let d = &map[..];
        if d.len() < 4 || d[..4] != elf::ELFMAG {
            return Err(Error::NotElf {
                path: path.to_owned(),
                what: "no ELF magic",
            });
        }
        if d.len() < 64 || d[4] != elf::ELFCLASS64 || d[5] != elf::ELFDATA2LSB {
            return Err(Error::NotX86_64 {
                path: path.to_owned(),
                what: "not a 64-bit little-endian ELF file".to_owned(),
            });
        }
        let header = elf::FileHeader64::<LE>::parse(d).map_err(|e| damaged(e.to_string()))?;
        let e_type = header.e_type(LE);
        if e_type != elf::ET_EXEC && e_type != elf::ET_DYN {
            return Err(Error::NotElf {
                path: path.to_owned(),
                what: elf_kind(e_type),
            });
        }
        if header.e_machine(LE) != elf::EM_X86_64 {
            return Err(Error::NotX86_64 {
                path: path.to_owned(),
                what: format!("a binary for ELF machine {}", header.e_machine(LE)),
            });
        }
        let phdrs = header
            .program_headers(LE, d)
            .map_err(|e| damaged(e.to_string()))?;
        let (phoff, phnum) = (header.e_phoff(LE), phdrs.len());
        let symbols = meta_symbols(header, d).map_err(|e| damaged(e.to_string()))?;
        Ok(ElfImage {
            map,
            e_type,
            phoff,
            phnum,
            symbols,
        })
    }

    fn phdrs(&self) -> &[elf::ProgramHeader64<LE>] {
        // Parsed once in `open` with the same offsets: this cannot fail.
        object::ReadRef::read_slice_at(&self.map[..], self.phoff, self.phnum).unwrap_or_default()
    }

    fn has_v8_metadata(&self) -> bool {
        self.symbols.iter().any(|s| s.name.starts_with("v8dbg_"))
    }

    fn build_id(&self) -> Option<BuildId> {
        self.phdrs()
            .iter()
            .filter(|ph| ph.p_type(LE) == elf::PT_NOTE)
            .find_map(|ph| build_id_in(ph.data(LE, &self.map[..]).ok()?, ph.p_align(LE)))
    }

    fn loads(&self) -> Vec<Load> {
        self.phdrs()
            .iter()
            .filter(|ph| ph.p_type(LE) == elf::PT_LOAD)
            .map(|ph| Load {
                vaddr: ph.p_vaddr(LE),
                memsz: ph.p_memsz(LE),
                offset: ph.p_offset(LE),
                filesz: ph.p_filesz(LE).min(ph.p_memsz(LE)),
            })
            .collect()
    }

    fn len(&self) -> u64 {
        self.map.len() as u64
    }
}

impl fmt::Debug for NodeBinary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeBinary")
            .field("path", &self.path)
            .field("mapped", &self.mapped)
            .field("bias", &format_args!("{:#x}", self.bias))
            .field("identity", &self.identity)
            .field("symbols", &self.symbols.len())
            .finish()
    }
}

/// The defined `v8dbg_*`/`nodedbg_*` symbols of `.dynsym` (they are exported, so stripping
/// keeps them), or of `.symtab` when `.dynsym` has none.
fn meta_symbols(header: &elf::FileHeader64<LE>, d: &[u8]) -> object::read::Result<Vec<MetaSymbol>> {
    let sections = header.sections(LE, d)?;
    for sh_type in [elf::SHT_DYNSYM, elf::SHT_SYMTAB] {
        let table = sections.symbols(LE, d, sh_type)?;
        let strings = table.strings();
        let mut found = Vec::new();
        for sym in table.iter() {
            if sym.st_shndx(LE) == elf::SHN_UNDEF {
                continue; // an addon that uses them, not the binary that has them
            }
            let Ok(name) = sym.name(LE, strings) else {
                continue;
            };
            if !(name.starts_with(b"v8dbg_") || name.starts_with(b"nodedbg_")) {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            found.push(MetaSymbol {
                name: name.to_owned(),
                vaddr: sym.st_value(LE),
                size: sym.st_size(LE),
            });
        }
        if found.iter().any(|s| s.name.starts_with("v8dbg_")) {
            return Ok(found);
        }
    }
    Ok(Vec::new())
}

/// The load bias of an image whose file offset 0 is mapped at `base`: the segment holding
/// file offset 0 is mapped at `bias + page_down(p_vaddr)`.
fn bias(phdrs: &[elf::ProgramHeader64<LE>], base: u64) -> Option<u64> {
    let first = phdrs
        .iter()
        .filter(|ph| ph.p_type(LE) == elf::PT_LOAD)
        .min_by_key(|ph| ph.p_offset(LE))?;
    if page_down(first.p_offset(LE)) != 0 {
        return None;
    }
    Some(base.wrapping_sub(page_down(first.p_vaddr(LE))))
}

/// The GNU build id among the notes of a `PT_NOTE` segment.
fn build_id_in(notes: &[u8], align: u64) -> Option<BuildId> {
    let notes =
        object::read::elf::NoteIterator::<elf::FileHeader64<LE>>::new(LE, align, notes).ok()?;
    notes
        .flatten()
        .find(|n| n.name() == elf::ELF_NOTE_GNU && n.n_type(LE) == elf::NT_GNU_BUILD_ID)
        .map(|n| BuildId(n.desc().to_vec()))
}

/// Without a build id: do the core's mappings of the image agree with the file? A
/// fixed-address executable must be unrelocated; each loaded segment of the file must be
/// mapped from its own file offset, or replaced by anonymous memory (text remapped to huge
/// pages); each mapping of the file must hold bytes of one of its segments; and no mapping may
/// reach past the end of the file.
fn layout_matches(
    core: &Core<'_>,
    mapped: &Path,
    image: &ElfImage,
    bias: u64,
) -> Result<(), String> {
    if image.e_type == elf::ET_EXEC && bias != 0 {
        return Err(format!(
            "it is a fixed-address executable, and the core has it moved by {bias:#x}"
        ));
    }
    let loads = image.loads();
    for l in loads.iter().filter(|l| l.filesz > 0) {
        let addr = bias.wrapping_add(page_down(l.vaddr));
        let from = match core.mapping_at(addr) {
            Some(m) if m.path == mapped => m.offset + (addr - m.start),
            None if core.segment_at(addr).is_some_and(|s| s.anonymous) => continue,
            _ => {
                return Err(format!(
                    "the core does not map it at {addr:#x}, where its segment at {:#x} goes",
                    l.vaddr
                ));
            }
        };
        if from != page_down(l.offset) {
            return Err(format!(
                "the core maps its segment at {:#x} from file offset {from:#x}, the file has it at {:#x}",
                l.vaddr,
                page_down(l.offset)
            ));
        }
    }
    // Node maps parts of its own text elsewhere too (V8's embedded builtins): a mapping
    // need only hold bytes of one loaded segment.
    for m in core.mappings().iter().filter(|m| &*m.path == mapped) {
        let len = m.end - m.start;
        let fits = loads.iter().any(|l| {
            let end = l.offset.saturating_add(l.filesz).div_ceil(PAGE) * PAGE;
            page_down(l.offset) <= m.offset && m.offset.saturating_add(len) <= end
        });
        if !fits {
            return Err(format!(
                "the core maps {len:#x} bytes from file offset {:#x}, which none of its segments holds",
                m.offset
            ));
        }
    }
    let file_end = image.len().div_ceil(PAGE) * PAGE;
    let mapped_end = core
        .mappings()
        .iter()
        .filter(|m| m.path == mapped)
        .map(|m| m.offset.saturating_add(m.end - m.start))
        .max()
        .unwrap_or(0);
    if mapped_end > file_end {
        return Err(format!(
            "the core maps {mapped_end} bytes of it, the file has {}",
            image.len()
        ));
    }
    Ok(())
}

/// The mapped paths that may hold V8: the executable, then `libnode.so*` (Debian's node).
fn candidates(core: &Core<'_>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = core
        .executable()
        .map(|m| m.path.clone())
        .into_iter()
        .collect();
    for m in core.mappings() {
        let libnode = m
            .path
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"libnode"));
        if libnode && !paths.contains(&m.path) {
            paths.push(m.path.clone());
        }
    }
    paths
}

/// Which candidate an explicit `--node` file stands for: the one whose build id in the core
/// is the file's, else the one with its file name, else the executable.
fn pick_mapping<'c>(
    core: &Core<'_>,
    candidates: &'c [PathBuf],
    file: &Path,
    image: &ElfImage,
) -> &'c Path {
    let id = image.build_id();
    let by_id = candidates
        .iter()
        .find(|c| id.is_some() && MappedImage::find(core, c).and_then(|i| i.build_id) == id);
    let by_name = || {
        candidates
            .iter()
            .find(|c| without_deleted(c).file_name() == file.file_name())
    };
    by_id.or_else(by_name).unwrap_or(&candidates[0])
}

/// The kernel appends ` (deleted)` to a mapped file that was replaced (an upgrade under a
/// running process): the path on disk is then another build, which the check will tell.
fn without_deleted(path: &Path) -> PathBuf {
    let bytes = path.as_os_str().as_encoded_bytes();
    match bytes.strip_suffix(b" (deleted)") {
        Some(b) => crate::core::path_from_bytes(b),
        None => path.to_owned(),
    }
}

fn page_down(x: u64) -> u64 {
    x & !(PAGE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_suffix_is_dropped() {
        assert_eq!(
            without_deleted(Path::new("/usr/bin/node (deleted)")),
            Path::new("/usr/bin/node")
        );
        assert_eq!(
            without_deleted(Path::new("/usr/bin/node")),
            Path::new("/usr/bin/node")
        );
    }

    #[test]
    fn build_id_is_hex() {
        assert_eq!(BuildId(vec![0xeb, 0x0a, 0xf2]).to_string(), "eb0af2");
    }

    #[test]
    fn values_sign_extend_from_int() {
        assert_eq!(decode(&(-8i32).to_le_bytes()), Some(-8));
        assert_eq!(decode(&2328u64.to_le_bytes()), Some(2328));
        assert_eq!(decode(&[1, 2, 3]), None);
    }
}
