//! `leakhound stats`: the Statistics view.

use std::io::Write;

use crate::cli::StatsArgs;
use crate::load::load;
use crate::output;

pub fn run(args: StatsArgs) -> anyhow::Result<()> {
    let settings = &args.snapshot;
    let loaded = load(&settings.file, settings.timings)?;
    let (s, a) = (&loaded.snapshot, &loaded.analysis);
    let st = heapsnap::statistics(s, a);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if settings.json {
        let doc = super::SnapshotJson::new(&loaded, st, None, None);
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        let row = |name: &str, v: u64| vec![name.to_owned(), output::size(v), output::count(v)];
        let rows = vec![
            row("Total", st.total),
            row("V8 heap", st.v8heap.total),
            row("  Code", st.v8heap.code),
            row("  Strings", st.v8heap.strings),
            row("  JS arrays", st.v8heap.js_arrays),
            row("  System objects", st.v8heap.system),
            row("Native", st.native.total),
            row("  Typed arrays", st.native.typed_arrays),
        ];
        writeln!(
            out,
            "{}: {} nodes, {} edges",
            loaded.name,
            output::count(s.node_count() as u64),
            output::count(s.edge_count() as u64)
        )?;
        output::table(&mut out, &["Category", "Size", "Bytes"], &rows)?;
    }
    out.flush()?;
    Ok(())
}
