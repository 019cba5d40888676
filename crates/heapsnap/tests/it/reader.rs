//! The reader: every code path against one expectation, and every broken file to a clear error.

use std::io::Read;

use flate2::{Compression, write::GzEncoder};
use heapsnap::testing::{Format, Graph};
use heapsnap::{NodeIdx, StrId};

use crate::render;

const GRAPH: &str = "root: synthetic; gc: synthetic name=\"(GC roots)\"; w: object 20 name=\"Window\"
    a: object 100 name=\"Array\" at=3,10,2; e: array 40 name=\"(object elements)\"; s: string 7 name=\"a \\\"quoted\\\" ünïcode 😀 string\"
    m: object 12 name=\"Object\"; m2: object 12 name=\"Object\"; c: closure 32 name=\"handler\"
    root -element-> gc; gc -element-> w; w -property:list-> a; a -internal:elements-> e; e -element-> s
    w -property:m-> m; w -property:m2-> m2; m -property:x-> s; m2 -property:x-> s; c -context:a-> a
    gc -element-> c; w -weak:w-> c";

fn analysed(text: &[u8], chunk: usize) -> String {
    let mut s = heapsnap::read_with_chunk_size(text, "t.heapsnapshot", chunk).expect("reads");
    let a = heapsnap::analyze(&mut s);
    render(&s, &a)
}

/// Reads one byte per call, the worst a pipe can do.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

#[test]
fn every_chunk_size_and_source_reads_the_same() {
    for format in [
        Format::Classic,
        Format::Newest {
            extra_native_bytes: 5,
        },
    ] {
        let text = Graph::parse(GRAPH).to_json(format);
        let expected = analysed(text.as_bytes(), 8 << 20);
        for chunk in (1..=17).chain([64, 1000]) {
            assert_eq!(
                analysed(text.as_bytes(), chunk),
                expected,
                "chunk size {chunk}"
            );
        }
        let mut s =
            heapsnap::read_with_chunk_size(Trickle(text.as_bytes()), "trickle", 3).expect("reads");
        let a = heapsnap::analyze(&mut s);
        assert_eq!(render(&s, &a), expected);

        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(analysed(&gz, 8 << 20), expected, "gzip");
        assert_eq!(analysed(&gz, 5), expected, "gzip, small chunks");
    }
}

#[test]
fn reads_strings_locations_and_escapes() {
    let text = Graph::parse(GRAPH).to_json(Format::Classic);
    let s = heapsnap::read(text.as_bytes(), "t").unwrap();
    let names: Vec<String> = s
        .nodes
        .name
        .iter()
        .map(|&name| s.strings.get(name).into_owned())
        .collect();
    assert!(
        names.contains(&"a \"quoted\" ünïcode 😀 string".to_owned()),
        "{names:?}"
    );
    assert_eq!(
        s.location(NodeIdx(3)),
        Some(heapsnap::Location {
            script_id: 3,
            line: 10,
            column: 2
        })
    );
    assert_eq!(s.location(NodeIdx(2)), None);
}

#[test]
fn surrogate_escapes_decode() {
    let text = std::fs::read_to_string("tests/it/valid-small.heapsnapshot")
        .unwrap()
        .replace(r#""A","B""#, r#""\ud83d\ude00","lone \ud800 high""#);
    let s = heapsnap::read(text.as_bytes(), "t").unwrap();
    assert_eq!(s.strings.get(StrId(2)), "😀");
    assert_eq!(s.strings.bytes(StrId(3)), b"lone \xed\xa0\x80 high"); // WTF-8 keeps the lone surrogate.
}

/// Each file in `tests/broken` and a fragment of the error it must give. None may panic.
#[test]
fn broken_files_give_clear_errors() {
    let cases = [
        ("empty", "byte 0: the file ends early"),
        ("not-json", "byte 0: not JSON: expected '{'"),
        ("array-top", "found '['"),
        (
            "no-meta",
            "in \"snapshot\": not a V8 heap snapshot: bad header: missing field `meta`",
        ),
        (
            "truncated-nodes",
            "in \"nodes\": the file ends early, before the array's closing ']'",
        ),
        (
            "truncated-strings",
            "in \"strings\": the file ends early, inside a string",
        ),
        (
            "unknown-layout",
            "unsupported field layout: meta.node_fields has no \"type\" field",
        ),
        (
            "nodes-length",
            "\"nodes\" has 20 numbers, but node_count × node fields is 3 × 7 = 21",
        ),
        (
            "edge-total",
            "edge_count fields add up to 3 edges, but \"edges\" has 2",
        ),
        (
            "string-index",
            "edge 1 (property) has name index 99, past the end of the 4 strings",
        ),
        ("node-name-index", "node 1 (id 3) has name index 77"),
        (
            "non-digit",
            "byte 657: in \"nodes\": expected a number, found '-'",
        ),
        ("huge-number", "number 99999999999 does not fit in 32 bits"),
        // Found by the fuzzer: more digits than a u64 holds.
        (
            "long-number",
            "byte 714: in \"nodes\": more numbers than the header announces (21)",
        ),
        ("bad-node-type", "node type 42 is not one of the 15 types"),
        (
            "bad-escape",
            "in \"strings\": not JSON: expected a JSON escape",
        ),
        (
            "trace-function-string",
            "in \"trace_function_infos\": script_name index 9 is past the end of the 4 strings",
        ),
        (
            "bad-location",
            "in \"locations\": object_index 8 is not the index of a node",
        ),
    ];
    let dir = std::path::Path::new("tests/broken");
    let count = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(count, cases.len(), "every broken file has a case");
    for (name, fragment) in cases {
        let path = dir.join(format!("{name}.heapsnapshot"));
        let err = heapsnap::read_path(&path).expect_err(name).to_string();
        assert!(
            err.starts_with(&path.display().to_string()),
            "{name}: the error names the file: {err}"
        );
        assert!(
            err.contains(fragment),
            "{name}: {err}\n  does not contain: {fragment}"
        );
        // Every cut of a broken file fails cleanly too.
        let text = std::fs::read(&path).unwrap();
        for cut in 0..text.len() {
            let _ = heapsnap::read_with_chunk_size(&text[..cut], name, 7);
        }
    }
}

#[test]
fn every_prefix_of_a_valid_file_is_an_error_not_a_panic() {
    let text = std::fs::read("tests/it/valid-small.heapsnapshot").unwrap();
    assert!(heapsnap::read(&text[..], "valid").is_ok());
    let trimmed = text.trim_ascii_end().len();
    for cut in 0..trimmed {
        assert!(
            heapsnap::read_with_chunk_size(&text[..cut], "cut", 4).is_err(),
            "prefix of {cut} bytes was accepted"
        );
    }
}

/// A header can announce any count; the columns it asks for must not abort the process.
#[test]
fn a_header_announcing_billions_of_nodes_is_an_error() {
    let text = std::fs::read_to_string("tests/it/valid-small.heapsnapshot")
        .unwrap()
        .replace(r#""node_count":3"#, r#""node_count":4000000000"#);
    let err = heapsnap::read(text.as_bytes(), "big")
        .unwrap_err()
        .to_string();
    assert!(err.contains("in \"nodes\""), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let err = heapsnap::read_path("no/such/file.heapsnapshot".as_ref())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("no/such/file.heapsnapshot: "), "{err}");
}
