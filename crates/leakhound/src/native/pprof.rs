//! A pprof profile (`profile.proto`, gzipped) of a process's native allocations at the last
//! checkpoint: `alloc_objects`, `alloc_space`, `inuse_objects`, `inuse_space`, as Go's heap
//! profiles have, so `go tool pprof`, Pyroscope and speedscope open it. prost encodes the
//! messages; only the fields we fill are declared.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use leakhound_live::native::Symbols;
use leakhound_live::native::analysis::{self, Options};
use leakhound_live::native::record::Process;
use prost::Message;

#[derive(Clone, PartialEq, Message)]
struct Profile {
    #[prost(message, repeated, tag = "1")]
    sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    time_nanos: i64,
    #[prost(int64, tag = "10")]
    duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    period: i64,
    #[prost(int64, repeated, tag = "13")]
    comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
struct ValueType {
    #[prost(int64, tag = "1")]
    r#type: i64,
    #[prost(int64, tag = "2")]
    unit: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct Location {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(uint64, tag = "3")]
    address: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
struct Line {
    #[prost(uint64, tag = "1")]
    function_id: u64,
    #[prost(int64, tag = "2")]
    line: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Function {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
    #[prost(int64, tag = "3")]
    system_name: i64,
    #[prost(int64, tag = "4")]
    filename: i64,
}

#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.id(""); // string 0 is always ""
        s
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

pub fn write(
    path: &Path,
    process: &Process,
    options: &Options,
    symbols: &mut Symbols,
) -> anyhow::Result<()> {
    let Some((_, last)) = analysis::window(process, options.checkpoints.as_deref()) else {
        return Ok(());
    };
    let mut strings = Strings::new();
    let mut sample_type = Vec::new();
    for (kind, unit) in [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ] {
        sample_type.push(ValueType {
            r#type: strings.id(kind),
            unit: strings.id(unit),
        });
    }
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut function_list = Vec::new();
    let mut locations: HashMap<u64, u64> = HashMap::new();
    let mut location_list = Vec::new();
    let mut samples = Vec::new();
    for counters in &last.stacks {
        let addrs = process
            .stacks
            .get(counters.id as usize)
            .cloned()
            .unwrap_or_default();
        let mut location_id = Vec::new();
        for addr in addrs {
            let next = location_list.len() as u64 + 1;
            let id = *locations.entry(addr).or_insert(next);
            if id == next {
                // Inlined functions first, as pprof lists them.
                let frames = symbols.frames_at(addr, u64::MAX);
                let mut lines = Vec::new();
                for frame in &frames {
                    let (file, line) =
                        match frame.location.as_deref().and_then(|l| l.split_once(':')) {
                            Some((file, rest)) => (
                                file.to_owned(),
                                rest.split(':')
                                    .next()
                                    .and_then(|n| n.parse().ok())
                                    .unwrap_or(0),
                            ),
                            None => (frame.module.clone(), 0),
                        };
                    let key = (frame.name.clone(), file.clone());
                    let next_fn = function_list.len() as u64 + 1;
                    let function_id = *functions.entry(key).or_insert(next_fn);
                    if function_id == next_fn {
                        let name = strings.id(&frame.name);
                        function_list.push(Function {
                            id: function_id,
                            name,
                            system_name: name,
                            filename: strings.id(&file),
                        });
                    }
                    lines.push(Line { function_id, line });
                }
                location_list.push(Location {
                    id,
                    address: addr,
                    line: lines,
                });
            }
            location_id.push(id);
        }
        samples.push(Sample {
            location_id,
            value: vec![
                counters.alloc_objects.round() as i64,
                counters.alloc_bytes as i64,
                counters.live_objects.round() as i64,
                counters.live_bytes as i64,
            ],
        });
    }
    let comment = strings.id(&format!(
        "leakhound native recording of PID {}: sampled once per {} bytes on average; values are unbiased estimates",
        process.pid, last.interval
    ));
    let profile = Profile {
        sample_type,
        sample: samples,
        location: location_list,
        function: function_list,
        time_nanos: (last.unix_ms as i64).saturating_mul(1_000_000),
        duration_nanos: (last.time_ms as i64).saturating_mul(1_000_000),
        period_type: Some(ValueType {
            r#type: strings.id("space"),
            unit: strings.id("bytes"),
        }),
        period: last.interval as i64,
        comment: vec![comment],
        default_sample_type: 3,
        string_table: std::mem::take(&mut strings.table),
    };
    let file = leakhound_live::capture::create_private(path)?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(&profile.encode_to_vec())?;
    gz.finish()?;
    Ok(())
}
