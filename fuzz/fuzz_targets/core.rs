//! Arbitrary bytes into the core reader: it must return an error, never panic; and whatever it
//! accepts, every read and the images it finds must be answered without panicking. Only the
//! bytes are read: `NodeBinary::find` would open the files a core names, so it is left out.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(core) = v8core::Core::parse(data, Path::new("fuzz")) else {
        return;
    };
    for s in core.segments() {
        let bytes = core.segment_bytes(s);
        assert!(bytes.len() as u64 <= s.filesz);
        for addr in [
            s.vaddr,
            s.present_end().wrapping_sub(8),
            s.end().wrapping_sub(1),
            s.end(),
        ] {
            let _ = core.read_u64(addr);
            let _ = core.read(addr, 4096);
            let _ = core.is_present(addr);
        }
    }
    for t in core.threads() {
        let _ = core.read_u64(t.regs.rsp);
        let _ = core.segment_at(t.regs.rip);
    }
    let _ = core.main_thread();
    let _ = core.executable();
    let _ = v8core::MappedImage::all(&core);
});
