//! Arbitrary bytes into the reader: it must return an error, never panic; and whatever it
//! accepts, every analysis must handle without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small read size pushes every token across buffer boundaries.
    let chunk = 1 + data.first().map_or(0, |&b| usize::from(b % 16));
    if let Ok(mut snapshot) = heapsnap::read_with_chunk_size(data, "fuzz", chunk) {
        let analysis = heapsnap::analyze(&mut snapshot);
        let _ = heapsnap::summary(&snapshot, &analysis);
        let _ = heapsnap::statistics(&snapshot, &analysis);
    }
});
