//! heapsnap's integration tests: one binary, one module per feature. Graphs are written in the
//! small language of `heapsnap::testing`, read back through the real reader, analysed, and
//! rendered as stable text.

mod devtools;
mod findings;
mod reader;

use heapsnap::NodeIdx;
use heapsnap::testing::{Format, Graph};

/// Builds, reads and analyses a graph.
fn load(graph: &str, format: Format) -> (heapsnap::Snapshot, heapsnap::Analysis) {
    let text = Graph::parse(graph).to_json(format);
    let mut snapshot =
        heapsnap::read(text.as_bytes(), "test.heapsnapshot").expect("the test graph reads");
    let analysis = heapsnap::analyze(&mut snapshot);
    (snapshot, analysis)
}

/// One line per node (class, distance, shallow, retained, dominator), then the Summary rows and
/// the Statistics.
fn render(s: &heapsnap::Snapshot, a: &heapsnap::Analysis) -> String {
    let name = |v: NodeIdx| s.strings.get(s.nodes.name[v]).into_owned();
    let mut out = String::new();
    for v in s.nodes.all() {
        out += &format!(
            "{:<12} class={:<14} d={:<10} self={:<6} ret={:<8} idom={}\n",
            name(v),
            s.strings.get(a.class[v]),
            a.distance[v],
            s.nodes.self_size[v],
            a.retained[v],
            name(a.idom[v]),
        );
    }
    out += "summary:\n";
    for r in heapsnap::summary(s, a) {
        out += &format!(
            "  {} count={} shallow={} retained={} distance={}\n",
            r.name, r.count, r.shallow_size, r.retained_size, r.distance
        );
    }
    let st = heapsnap::statistics(s, a);
    out += &format!(
        "stats: total={} v8heap={} (code={} strings={} js_arrays={} system={}) native={} (typed_arrays={})\n",
        st.total,
        st.v8heap.total,
        st.v8heap.code,
        st.v8heap.strings,
        st.v8heap.js_arrays,
        st.v8heap.system,
        st.native.total,
        st.native.typed_arrays
    );
    out
}

fn check(graph: &str, expect: expect_test::Expect) {
    check_format(graph, Format::Classic, expect);
}

fn check_format(graph: &str, format: Format, expect: expect_test::Expect) {
    let (s, a) = load(graph, format);
    expect.assert_eq(&render(&s, &a));
}
