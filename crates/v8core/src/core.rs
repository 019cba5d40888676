//! The ELF core reader: memory segments (`PT_LOAD`), threads (`NT_PRSTATUS`), file mappings
//! (`NT_FILE`), the process (`NT_PRPSINFO`) and the auxiliary vector (`NT_AUXV`).
//!
//! A [`Core`] borrows the bytes of the file and never copies memory out of them: [`Core::read`]
//! returns a slice of the input. Both shapes of Linux cores are read the same way:
//!
//! - gdb's `gcore` writes what `coredump_filter` asks for whole, V8's PROT_NONE reservations
//!   included (as readable, zero-filled segments), and no segment at all for the file-backed
//!   text it leaves out (gdb 13);
//! - the kernel writes a segment for every mapping, with `filesz = 0` (or less than `memsz`)
//!   for what `coredump_filter` left out or was never touched, and leaves the file sparse.
//!
//! A byte beyond a segment's `filesz` is *absent*, never zero: reads that touch it return `None`.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use object::elf;

use crate::error::{Error, Result};

mod parse;

/// An opened core file: a read-only map of it, parsed on demand into a [`Core`].
pub struct CoreFile {
    path: PathBuf,
    map: Mmap,
}

impl CoreFile {
    /// Maps the core read-only. Cores are large (gcore writes ~VSZ): nothing is read yet.
    pub fn open(path: impl AsRef<Path>) -> Result<CoreFile> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        // SAFETY: a read-only private map, never written through. A core truncated by another
        // process while we read it would fault; cores are written once and then left alone.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(CoreFile { path, map })
    }

    /// Parses the headers and notes (cheap: the memory itself is only read on demand).
    pub fn parse(&self) -> Result<Core<'_>> {
        Core::parse(&self.map, &self.path)
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

/// A parsed core over borrowed bytes (a [`CoreFile`]'s map, or any slice).
///
/// Every slice it returns lives as long as the bytes (`'a`), not as long as the `Core`.
pub struct Core<'a> {
    path: PathBuf,
    data: &'a [u8],
    /// `PT_LOAD` segments sorted by `vaddr`.
    segments: Vec<Segment>,
    /// Threads in note order: the kernel puts the thread that took the signal first.
    threads: Vec<Thread>,
    /// `NT_FILE` entries sorted by `start`.
    mappings: Vec<FileMapping>,
    process: Option<Process>,
    auxv: Vec<(u64, u64)>,
}

/// One memory mapping of the process (`PT_LOAD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Address of the first byte.
    pub vaddr: u64,
    /// Size in memory.
    pub memsz: u64,
    /// How many of its first bytes the core holds (at most `memsz`); the rest is absent.
    pub filesz: u64,
    /// Offset of its first byte in the core file.
    pub offset: u64,
    /// Protection when the core was written.
    pub flags: Flags,
    /// No `NT_FILE` mapping overlaps it: heap, stacks, V8's pages, JIT code.
    pub anonymous: bool,
}

impl Segment {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }

    /// One past the last address whose byte the core holds.
    pub fn present_end(&self) -> u64 {
        self.vaddr.saturating_add(self.filesz)
    }

    /// Whether `addr` is inside the mapping (present or not).
    pub fn contains(&self, addr: u64) -> bool {
        self.vaddr <= addr && addr < self.end()
    }

    /// Whether the core holds the byte at `addr`.
    pub fn is_present(&self, addr: u64) -> bool {
        self.vaddr <= addr && addr < self.present_end()
    }
}

/// Segment protection (`p_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags(pub u32);

impl Flags {
    /// `PF_R`: gcore also writes PROT_NONE reservations as readable (and zero-filled).
    pub fn readable(self) -> bool {
        self.0 & elf::PF_R != 0
    }

    /// `PF_W`: V8's heap pages (but the read-only space), stacks, malloc's arenas.
    pub fn writable(self) -> bool {
        self.0 & elf::PF_W != 0
    }

    /// `PF_X`: text and JIT code.
    pub fn executable(self) -> bool {
        self.0 & elf::PF_X != 0
    }
}

impl std::fmt::Display for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bit = |on, c| if on { c } else { '-' };
        write!(
            f,
            "{}{}{}",
            bit(self.readable(), 'r'),
            bit(self.writable(), 'w'),
            bit(self.executable(), 'x')
        )
    }
}

/// One thread (`NT_PRSTATUS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thread {
    /// The thread id (`pr_pid`; the main thread's equals the process id).
    pub tid: u32,
    /// The signal being delivered when the core was written (`pr_cursig`; 0 from gcore).
    pub signal: u16,
    /// Its registers when it stopped.
    pub regs: Registers,
}

/// The general registers of an x86-64 thread, as the kernel's `user_regs_struct` orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl Registers {
    /// A register by its DWARF number (x86-64 psABI: 0 rax, 1 rdx, 2 rcx, 3 rbx, 4 rsi, 5 rdi,
    /// 6 rbp, 7 rsp, 8–15 r8–r15, 16 the return address, i.e. rip), as CFI unwinders ask.
    pub fn dwarf(&self, number: u16) -> Option<u64> {
        Some(match number {
            0 => self.rax,
            1 => self.rdx,
            2 => self.rcx,
            3 => self.rbx,
            4 => self.rsi,
            5 => self.rdi,
            6 => self.rbp,
            7 => self.rsp,
            8 => self.r8,
            9 => self.r9,
            10 => self.r10,
            11 => self.r11,
            12 => self.r12,
            13 => self.r13,
            14 => self.r14,
            15 => self.r15,
            16 => self.rip,
            _ => return None,
        })
    }

    /// From the 27 words of `user_regs_struct`, in its order.
    fn from_words(w: &[u64; 27]) -> Registers {
        Registers {
            r15: w[0],
            r14: w[1],
            r13: w[2],
            r12: w[3],
            rbp: w[4],
            rbx: w[5],
            r11: w[6],
            r10: w[7],
            r9: w[8],
            r8: w[9],
            rax: w[10],
            rcx: w[11],
            rdx: w[12],
            rsi: w[13],
            rdi: w[14],
            orig_rax: w[15],
            rip: w[16],
            cs: w[17],
            eflags: w[18],
            rsp: w[19],
            ss: w[20],
            fs_base: w[21],
            gs_base: w[22],
            ds: w[23],
            es: w[24],
            fs: w[25],
            gs: w[26],
        }
    }
}

/// A file mapped into the process (`NT_FILE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Offset in the file of the byte at `start`.
    pub offset: u64,
    /// The path as the kernel saw it, in the process's mount namespace; a file replaced
    /// since it was mapped ends in ` (deleted)`.
    pub path: PathBuf,
}

impl FileMapping {
    /// Whether `addr` is inside the mapping.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// The process (`NT_PRPSINFO`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// The process id (the main thread's id).
    pub pid: u32,
    /// The parent's process id.
    pub ppid: u32,
    /// The real user id.
    pub uid: u32,
    /// The executable's name, cut to 15 bytes by the kernel.
    pub name: String,
    /// The command line, arguments separated by spaces, cut to 80 bytes by the kernel.
    pub args: String,
}

/// `a_type` of the entry point in the auxiliary vector.
const AT_ENTRY: u64 = 9;

impl<'a> Core<'a> {
    /// Parses an x86-64 Linux core from its bytes. `path` only names it in errors.
    pub fn parse(data: &'a [u8], path: &Path) -> Result<Core<'a>> {
        parse::Parser { data, path }.parse()
    }

    /// The path given to [`Core::parse`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The memory segments, sorted by address.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The segments no file is mapped at: where V8's heap, the stacks and JIT code live.
    pub fn anonymous_segments(&self) -> impl Iterator<Item = &Segment> + '_ {
        self.segments.iter().filter(|s| s.anonymous)
    }

    /// The segment whose mapping contains `addr` (binary search).
    pub fn segment_at(&self, addr: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.vaddr <= addr);
        let s = self.segments.get(i.checked_sub(1)?)?;
        s.contains(addr).then_some(s)
    }

    /// The bytes of a segment that the core holds (its first `filesz` bytes).
    pub fn segment_bytes(&self, segment: &Segment) -> &'a [u8] {
        // Parsing checked `offset + filesz <= data.len()` for every segment it kept; a
        // `Segment` built elsewhere gets an empty slice rather than a panic.
        let start = segment.offset as usize;
        self.data
            .get(start..start.saturating_add(segment.filesz as usize))
            .unwrap_or_default()
    }

    /// `len` bytes at `addr`, without copying; `None` if any of them is absent from the core
    /// (beyond a segment's `filesz`, unmapped, or across the end of a segment: an object never
    /// spans two mappings, and a read that does is not one the callers want to make).
    pub fn read(&self, addr: u64, len: usize) -> Option<&'a [u8]> {
        let s = self.segment_at(addr)?;
        let at = addr - s.vaddr;
        if at.checked_add(len as u64)? > s.filesz {
            return None;
        }
        let start = s.offset.checked_add(at)? as usize;
        self.data.get(start..start.checked_add(len)?)
    }

    /// `N` bytes at `addr`, copied into an array.
    pub fn read_array<const N: usize>(&self, addr: u64) -> Option<[u8; N]> {
        self.read(addr, N)?.try_into().ok()
    }

    /// The byte at `addr`, `None` if absent.
    pub fn read_u8(&self, addr: u64) -> Option<u8> {
        Some(self.read(addr, 1)?[0])
    }

    /// A little-endian `u16` at `addr` (no alignment needed), `None` if absent.
    pub fn read_u16(&self, addr: u64) -> Option<u16> {
        self.read_array(addr).map(u16::from_le_bytes)
    }

    /// A little-endian `u32` at `addr` (no alignment needed), `None` if absent.
    pub fn read_u32(&self, addr: u64) -> Option<u32> {
        self.read_array(addr).map(u32::from_le_bytes)
    }

    /// A little-endian `i32` at `addr` (no alignment needed), `None` if absent.
    pub fn read_i32(&self, addr: u64) -> Option<i32> {
        self.read_array(addr).map(i32::from_le_bytes)
    }

    /// A little-endian `u64` at `addr` (no alignment needed), `None` if absent.
    pub fn read_u64(&self, addr: u64) -> Option<u64> {
        self.read_array(addr).map(u64::from_le_bytes)
    }

    /// A little-endian `i64` at `addr` (no alignment needed), `None` if absent.
    pub fn read_i64(&self, addr: u64) -> Option<i64> {
        self.read_array(addr).map(i64::from_le_bytes)
    }

    /// Whether the core holds the byte at `addr`.
    pub fn is_present(&self, addr: u64) -> bool {
        self.segment_at(addr).is_some_and(|s| s.is_present(addr))
    }

    /// The threads, in note order (the kernel writes the thread that took the signal first).
    pub fn threads(&self) -> &[Thread] {
        &self.threads
    }

    /// The main thread (its id is the process id), or else the first thread.
    pub fn main_thread(&self) -> Option<&Thread> {
        let pid = self.process.as_ref().map(|p| p.pid);
        self.threads
            .iter()
            .find(|t| Some(t.tid) == pid)
            .or(self.threads.first())
    }

    /// The files mapped into the process, sorted by address.
    pub fn mappings(&self) -> &[FileMapping] {
        &self.mappings
    }

    /// The file mapping that contains `addr`.
    pub fn mapping_at(&self, addr: u64) -> Option<&FileMapping> {
        let i = self.mappings.partition_point(|m| m.start <= addr);
        let m = self.mappings.get(i.checked_sub(1)?)?;
        m.contains(addr).then_some(m)
    }

    /// The process, when the core has `NT_PRPSINFO`.
    pub fn process(&self) -> Option<&Process> {
        self.process.as_ref()
    }

    /// A value of the auxiliary vector (`NT_AUXV`) by its `a_type` (`AT_*`).
    pub fn auxv(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|&&(k, _)| k == key).map(|&(_, v)| v)
    }

    /// The mapping of the program's executable: the one holding the entry point (`AT_ENTRY`),
    /// or else the lowest file mapping at file offset 0.
    pub fn executable(&self) -> Option<&FileMapping> {
        let by_entry = self.auxv(AT_ENTRY).and_then(|entry| self.mapping_at(entry));
        let path = match by_entry {
            Some(m) => &m.path,
            None => &self.mappings.iter().find(|m| m.offset == 0)?.path,
        };
        self.image_base(path)
    }

    /// The mapping at file offset 0 of `path` (its ELF header, when the file is an ELF image).
    pub fn image_base(&self, path: &Path) -> Option<&FileMapping> {
        self.mappings
            .iter()
            .find(|m| m.offset == 0 && m.path == path)
    }
}

impl std::fmt::Debug for Core<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the bytes: a core is gigabytes.
        f.debug_struct("Core")
            .field("path", &self.path)
            .field("len", &self.data.len())
            .field("segments", &self.segments.len())
            .field("threads", &self.threads.len())
            .field("mappings", &self.mappings.len())
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

pub(crate) fn elf_kind(e_type: u16) -> &'static str {
    match e_type {
        elf::ET_EXEC => "executable",
        elf::ET_DYN => "shared library or position-independent executable",
        elf::ET_REL => "object file",
        elf::ET_CORE => "core dump",
        _ => "file of unknown type",
    }
}

pub(crate) fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_display_like_maps() {
        assert_eq!(Flags(elf::PF_R | elf::PF_W).to_string(), "rw-");
        assert_eq!(Flags(0).to_string(), "---");
    }

    #[test]
    fn garbage_is_an_error() {
        let p = Path::new("x");
        for data in [
            &b""[..],
            b"\x7fELF",
            b"not a core at all",
            &[0x7f, b'E', b'L', b'F', 1, 1, 1],
        ] {
            assert!(Core::parse(data, p).is_err());
        }
    }
}
