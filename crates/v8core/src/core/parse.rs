//! Parsing a core's ELF header, program headers and notes into a [`Core`]. The layouts of the
//! x86-64 note structures are written out here, with their offsets.

use std::path::Path;

use object::LittleEndian as LE;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};

use super::{
    Core, FileMapping, Flags, Process, Registers, Segment, Thread, elf_kind, path_from_bytes,
};
use crate::error::{Error, Result};

/// The size of the x86-64 `elf_prstatus` we read: `pr_reg` at 112, 27 words, then `pr_fpvalid`.
///
/// Layout (`include/uapi/linux/elfcore.h`, x86-64): `pr_info` (3 × i32) 0, `pr_cursig` (u16)
/// 12, `pr_sigpend` 16, `pr_sighold` 24, `pr_pid` 32, `pr_ppid` 36, `pr_pgrp` 40, `pr_sid` 44,
/// four `timeval`s 48..112, `pr_reg` 112..328, `pr_fpvalid` 328, padding to 336.
const PRSTATUS_CURSIG: usize = 12;
const PRSTATUS_PID: usize = 32;
const PRSTATUS_REG: usize = 112;
const PRSTATUS_MIN: usize = PRSTATUS_REG + 27 * 8;

/// x86-64 `elf_prpsinfo` (136 bytes): `pr_state`, `pr_sname`, `pr_zomb`, `pr_nice` 0..4,
/// `pr_flag` 8, `pr_uid` 16, `pr_gid` 20, `pr_pid` 24, `pr_ppid` 28, `pr_pgrp` 32, `pr_sid` 36,
/// `pr_fname[16]` 40, `pr_psargs[80]` 56.
const PRPSINFO_UID: usize = 16;
const PRPSINFO_PID: usize = 24;
const PRPSINFO_PPID: usize = 28;
const PRPSINFO_FNAME: usize = 40;
const PRPSINFO_PSARGS: usize = 56;
const PRPSINFO_MIN: usize = 136;

/// `NT_FILE`'s type: "FILE" in ASCII.
const NT_FILE: u32 = 0x4649_4c45;

pub(super) struct Parser<'a, 'p> {
    pub(super) data: &'a [u8],
    pub(super) path: &'p Path,
}

impl<'a> Parser<'a, '_> {
    pub(super) fn parse(self) -> Result<Core<'a>> {
        let header = self.header()?;
        let phdrs = self.program_headers(header)?;
        let mut core = Core {
            path: self.path.to_owned(),
            data: self.data,
            segments: Vec::with_capacity(phdrs.len()),
            threads: Vec::new(),
            mappings: Vec::new(),
            process: None,
            auxv: Vec::new(),
        };
        for ph in phdrs {
            match ph.p_type(LE) {
                elf::PT_LOAD => {
                    if let Some(s) = self.segment(ph)? {
                        core.segments.push(s);
                    }
                }
                elf::PT_NOTE => self.notes(ph, &mut core)?,
                _ => {}
            }
        }
        core.segments.sort_unstable_by_key(|s| s.vaddr);
        core.mappings.sort_by_key(|m| m.start);
        mark_anonymous(&mut core.segments, &core.mappings);
        Ok(core)
    }

    fn header(&self) -> Result<&'a elf::FileHeader64<LE>> {
        let d = self.data;
        if d.len() < 4 || d[..4] != elf::ELFMAG {
            let what = if d.is_empty() {
                "it is empty"
            } else {
                "no ELF magic"
            };
            return Err(Error::NotElf {
                path: self.path.to_owned(),
                what,
            });
        }
        if d.len() < size_of::<elf::FileHeader64<LE>>() {
            return Err(self.truncated("the ELF header", 64));
        }
        // e_ident: magic 0..4, class 4, data (byte order) 5.
        if d[4] != elf::ELFCLASS64 {
            return Err(self.not_x86_64("a 32-bit ELF file".to_owned()));
        }
        if d[5] != elf::ELFDATA2LSB {
            return Err(self.not_x86_64("a big-endian ELF file".to_owned()));
        }
        let header = elf::FileHeader64::<LE>::parse(d).map_err(|e| self.damaged(e.to_string()))?;
        match header.e_type(LE) {
            elf::ET_CORE => {}
            t => {
                return Err(Error::NotCore {
                    path: self.path.to_owned(),
                    kind: elf_kind(t),
                });
            }
        }
        match header.e_machine(LE) {
            elf::EM_X86_64 => Ok(header),
            m => Err(self.not_x86_64(format!("a core for ELF machine {m}"))),
        }
    }

    fn program_headers(
        &self,
        header: &'a elf::FileHeader64<LE>,
    ) -> Result<&'a [elf::ProgramHeader64<LE>]> {
        let (phoff, phnum) = (header.e_phoff(LE), u64::from(header.e_phnum(LE)));
        let end = phoff
            .checked_add(phnum.saturating_mul(size_of::<elf::ProgramHeader64<LE>>() as u64))
            .ok_or_else(|| self.damaged("its program header table overflows".to_owned()))?;
        if end > self.data.len() as u64 {
            return Err(self.truncated("the program header table", end));
        }
        header
            .program_headers(LE, self.data)
            .map_err(|e| self.damaged(e.to_string()))
    }

    fn segment(&self, ph: &elf::ProgramHeader64<LE>) -> Result<Option<Segment>> {
        let (vaddr, memsz) = (ph.p_vaddr(LE), ph.p_memsz(LE));
        let (offset, filesz) = (ph.p_offset(LE), ph.p_filesz(LE));
        if vaddr.checked_add(memsz).is_none() {
            return Err(self.damaged(format!(
                "the segment at {vaddr:#x} ends past the address space"
            )));
        }
        let needed = offset.checked_add(filesz).ok_or_else(|| {
            self.damaged(format!("the segment at {vaddr:#x} has an impossible size"))
        })?;
        if needed > self.data.len() as u64 {
            return Err(self.truncated(&format!("the memory segment at {vaddr:#x}"), needed));
        }
        if memsz == 0 {
            return Ok(None);
        }
        Ok(Some(Segment {
            vaddr,
            memsz,
            // Bytes past `memsz` are not memory: never read them as such.
            filesz: filesz.min(memsz),
            offset,
            flags: Flags(ph.p_flags(LE)),
            anonymous: true,
        }))
    }

    fn notes(&self, ph: &elf::ProgramHeader64<LE>, core: &mut Core<'a>) -> Result<()> {
        let (offset, size) = (ph.p_offset(LE), ph.p_filesz(LE));
        let needed = offset
            .checked_add(size)
            .ok_or_else(|| self.damaged("its note segment has an impossible size".to_owned()))?;
        if needed > self.data.len() as u64 {
            return Err(self.truncated("the note segment", needed));
        }
        let notes = ph
            .notes(LE, self.data)
            .map_err(|e| self.damaged(e.to_string()))?
            .into_iter()
            .flatten();
        for note in notes {
            let note = note.map_err(|e| self.damaged(format!("a note: {e}")))?;
            if note.name() != b"CORE" {
                continue;
            }
            let desc = note.desc();
            match note.n_type(LE) {
                elf::NT_PRSTATUS => core.threads.push(self.prstatus(desc)?),
                elf::NT_PRPSINFO => core.process = Some(self.prpsinfo(desc)?),
                elf::NT_AUXV => core.auxv = auxv(desc),
                NT_FILE => core.mappings = self.file_note(desc)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn prstatus(&self, desc: &[u8]) -> Result<Thread> {
        if desc.len() < PRSTATUS_MIN {
            return Err(self.damaged(format!(
                "a thread's NT_PRSTATUS has {} bytes, not the {PRSTATUS_MIN} of x86-64",
                desc.len()
            )));
        }
        let mut words = [0u64; 27];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u64_at(desc, PRSTATUS_REG + 8 * i);
        }
        Ok(Thread {
            tid: u32_at(desc, PRSTATUS_PID),
            signal: u16::from_le_bytes([desc[PRSTATUS_CURSIG], desc[PRSTATUS_CURSIG + 1]]),
            regs: Registers::from_words(&words),
        })
    }

    fn prpsinfo(&self, desc: &[u8]) -> Result<Process> {
        if desc.len() < PRPSINFO_MIN {
            return Err(self.damaged(format!(
                "its NT_PRPSINFO has {} bytes, not the {PRPSINFO_MIN} of x86-64",
                desc.len()
            )));
        }
        let text = |range: std::ops::Range<usize>| {
            let bytes = &desc[range];
            let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..len]).trim_end().to_owned()
        };
        Ok(Process {
            pid: u32_at(desc, PRPSINFO_PID),
            ppid: u32_at(desc, PRPSINFO_PPID),
            uid: u32_at(desc, PRPSINFO_UID),
            name: text(PRPSINFO_FNAME..PRPSINFO_PSARGS),
            args: text(PRPSINFO_PSARGS..PRPSINFO_MIN),
        })
    }

    /// `NT_FILE`: count, page size, `count` × (start, end, offset in pages), then `count`
    /// NUL-terminated paths.
    fn file_note(&self, desc: &[u8]) -> Result<Vec<FileMapping>> {
        let bad = |what: &str| self.damaged(format!("its NT_FILE note {what}"));
        if desc.len() < 16 {
            return Err(bad("is too short"));
        }
        let (count, page) = (u64_at(desc, 0), u64_at(desc, 8));
        let table_end = count
            .checked_mul(24)
            .and_then(|n| n.checked_add(16))
            .filter(|&n| n <= desc.len() as u64)
            .ok_or_else(|| bad("announces more entries than it holds"))?
            as usize;
        let mut paths = desc[table_end..].split(|&b| b == 0);
        let mut mappings = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            let at = 16 + 24 * i;
            let (start, end) = (u64_at(desc, at), u64_at(desc, at + 8));
            let pages = u64_at(desc, at + 16);
            let path = paths
                .next()
                .ok_or_else(|| bad("has fewer paths than entries"))?;
            let offset = pages
                .checked_mul(page)
                .ok_or_else(|| bad("has an impossible file offset"))?;
            if end < start {
                return Err(bad("has a mapping that ends before it starts"));
            }
            mappings.push(FileMapping {
                start,
                end,
                offset,
                path: path_from_bytes(path),
            });
        }
        Ok(mappings)
    }

    fn damaged(&self, what: String) -> Error {
        Error::Damaged {
            path: self.path.to_owned(),
            what,
        }
    }

    fn truncated(&self, what: &str, needed: u64) -> Error {
        Error::Truncated {
            path: self.path.to_owned(),
            what: what.to_owned(),
            needed,
            size: self.data.len() as u64,
        }
    }

    fn not_x86_64(&self, what: String) -> Error {
        Error::NotX86_64 {
            path: self.path.to_owned(),
            what,
        }
    }
}

/// `NT_AUXV`: (type, value) pairs up to `AT_NULL`.
fn auxv(desc: &[u8]) -> Vec<(u64, u64)> {
    desc.chunks_exact(16)
        .map(|c| (u64_at(c, 0), u64_at(c, 8)))
        .take_while(|&(k, _)| k != 0)
        .collect()
}

/// A segment is anonymous when no file mapping overlaps it. Both lists are sorted by start.
fn mark_anonymous(segments: &mut [Segment], mappings: &[FileMapping]) {
    for s in segments {
        // The first mapping that ends after the segment starts; it overlaps if it starts
        // before the segment ends. Mappings do not overlap one another in a real process.
        let i = mappings.partition_point(|m| m.end <= s.vaddr);
        s.anonymous = mappings.get(i).is_none_or(|m| m.start >= s.end());
    }
}

/// Little-endian words from a slice whose length the caller checked.
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(vaddr: u64, memsz: u64) -> Segment {
        Segment {
            vaddr,
            memsz,
            filesz: 0,
            offset: 0,
            flags: Flags(elf::PF_R),
            anonymous: true,
        }
    }

    #[test]
    fn anonymous_is_no_overlap_with_a_file() {
        let mut segments = [
            segment(0x1000, 0x1000),
            segment(0x3000, 0x2000),
            segment(0x8000, 0x1000),
        ];
        let mappings = [FileMapping {
            start: 0x4000,
            end: 0x6000,
            offset: 0,
            path: "/x".into(),
        }];
        mark_anonymous(&mut segments, &mappings);
        let anonymous: Vec<bool> = segments.iter().map(|s| s.anonymous).collect();
        assert_eq!(anonymous, [true, false, true]);
    }

    #[test]
    fn auxv_stops_at_its_end() {
        let mut desc = Vec::new();
        for w in [9u64, 0x1234, 0, 0, 7, 1] {
            desc.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(auxv(&desc), [(9, 0x1234)]);
    }
}
