//! The graphs of DevTools' own unit tests and Blink's web tests, with the answers they assert
//! (see the comment on each). Run with `UPDATE_EXPECT=1` to re-bless after a deliberate change.

use expect_test::expect;
use heapsnap::testing::Format;

use crate::{check, check_format};

/// `createHeapSnapshotMockRaw`: dominators by ordinal [0,0,0,0,2,3], retained
/// [20,2,8,10,5,6], class aggregates A{1,2,2} B{1,3,8} C{1,4,10} D{1,5,5} E{1,6,6}.
#[test]
fn mock_raw() {
    check(
        "root: hidden name=\"\"; A: object 2; B: object 3; C: object 4; D: object 5; E: object 6
         root -property:a-> A; root -property:b-> B
         A -element:1-> B; A -property:ac-> C; B -property:bc-> C; B -property:bd-> D; C -property:ce-> E",
        expect![[r#"
                         class=(system)       d=100000000  self=0      ret=20       idom=
            A            class=A              d=1          self=2      ret=2        idom=
            B            class=B              d=1          self=3      ret=8        idom=
            C            class=C              d=2          self=4      ret=10       idom=
            D            class=D              d=2          self=5      ret=5        idom=B
            E            class=E              d=3          self=6      ret=6        idom=C
            summary:
              C count=1 shallow=4 retained=10 distance=2
              B count=1 shallow=3 retained=8 distance=1
              E count=1 shallow=6 retained=6 distance=3
              D count=1 shallow=5 retained=5 distance=2
              A count=1 shallow=2 retained=2 distance=1
            stats: total=20 v8heap=20 (code=0 strings=0 js_arrays=0 system=0) native=0 (typed_arrays=0)
        "#]],
    );
}

/// Blink `heap-snapshot-weak-dominator`: Array retains 3310 at distance 2, each Uint8Array
/// 1100; `(GC roots)` → Window is dropped by the page-owned rule.
#[test]
fn weak_dominator() {
    check(
        "root: object; gcroots: object name=\"(GC roots)\"; Window: object 20; Array: object 10
         U1: object 100 name=\"Uint8Array\"; U2: object 100 name=\"Uint8Array\"; U3: object 100 name=\"Uint8Array\"
         B1: object 1000 name=\"ArrayBuffer\"; B2: object 1000 name=\"ArrayBuffer\"; B3: object 1000 name=\"ArrayBuffer\"
         root -element-> gcroots; root -shortcut-> Window; gcroots -element-> Window
         Window -property:root-> Array; Array -element-> U1; Array -element-> U2; Array -element-> U3
         U1 -internal:buffer-> B1; U2 -internal:buffer-> B2; U3 -internal:buffer-> B3
         B1 -weak:weak_next-> B2; B2 -weak:weak_next-> B3",
        expect![[r#"
            root         class=root           d=100000000  self=0      ret=3330     idom=root
            (GC roots)   class=(GC roots)     d=1          self=0      ret=0        idom=root
            Window       class=Window         d=1          self=20     ret=3330     idom=root
            Array        class=Array          d=2          self=10     ret=3310     idom=Window
            Uint8Array   class=Uint8Array     d=3          self=100    ret=1100     idom=Array
            Uint8Array   class=Uint8Array     d=3          self=100    ret=1100     idom=Array
            Uint8Array   class=Uint8Array     d=3          self=100    ret=1100     idom=Array
            ArrayBuffer  class=ArrayBuffer    d=4          self=1000   ret=1000     idom=Uint8Array
            ArrayBuffer  class=ArrayBuffer    d=4          self=1000   ret=1000     idom=Uint8Array
            ArrayBuffer  class=ArrayBuffer    d=4          self=1000   ret=1000     idom=Uint8Array
            summary:
              Window count=1 shallow=20 retained=3330 distance=1
              Array count=1 shallow=10 retained=3310 distance=2
              Uint8Array count=3 shallow=300 retained=3300 distance=3
              ArrayBuffer count=3 shallow=3000 retained=3000 distance=4
            stats: total=3330 v8heap=3330 (code=0 strings=0 js_arrays=10 system=0) native=0 (typed_arrays=0)
        "#]],
    );
}

/// Blink `heap-snapshot-orphan-nodes`: total 4610; A 300, B 300, Orphan 4000, OrphanChild 2000.
#[test]
fn orphan_nodes() {
    check(
        "root: synthetic; Window: object 10; Orphan: object 2000; OrphanChild: object 2000; A: object 300; B: object 300
         root -shortcut:w-> Window; root -shortcut:a-> A; root -shortcut:b-> B; root -shortcut:o-> Orphan
         Window -weak:orphan-> Orphan; Orphan -property:child-> OrphanChild; OrphanChild -property:b-> B
         Window -property:a-> A; A -property:b-> B",
        expect![[r#"
            root         class=(synthetic)    d=100000000  self=0      ret=4610     idom=root
            Window       class=Window         d=1          self=10     ret=10       idom=root
            Orphan       class=Orphan         d=1          self=2000   ret=4000     idom=root
            OrphanChild  class=OrphanChild    d=2          self=2000   ret=2000     idom=Orphan
            A            class=A              d=1          self=300    ret=300      idom=root
            B            class=B              d=1          self=300    ret=300      idom=root
            summary:
              Orphan count=1 shallow=2000 retained=4000 distance=1
              OrphanChild count=1 shallow=2000 retained=2000 distance=2
              A count=1 shallow=300 retained=300 distance=1
              B count=1 shallow=300 retained=300 distance=1
              Window count=1 shallow=10 retained=10 distance=1
            stats: total=4610 v8heap=4610 (code=0 strings=0 js_arrays=0 system=0) native=0 (typed_arrays=0)
        "#]],
    );
}

/// `heapSnapshotLargeRetainedSize`: six 1e9-byte nodes in a chain; the root retains 6e9.
#[test]
fn large_retained_size() {
    let (s, a) = crate::load(
        "root: synthetic; gc: synthetic name=\"(GC roots)\"; A: object 1000000000; B: object 1000000000
         C: object 1000000000; D: object 1000000000; E: object 1000000000; F: object 1000000000
         root -element-> gc; gc -element-> A; A -property-> B; B -property-> C; C -property-> D
         D -property-> E; E -property-> F",
        Format::Newest { extra_native_bytes: 0 },
    );
    assert_eq!(a.retained[s.root], 6_000_000_000);
    assert_eq!(a.total_size, 6_000_000_000);
}

/// Blink `heap-snapshot-statistics` (newest format): total 1887654351, native 80000010 (with 10
/// bytes of extra_native_bytes), v8heap 1807654341 {code 50000, jsArrays 20, strings 300,
/// system 1}.
#[test]
fn statistics() {
    let (s, a) = crate::load(
        "root: synthetic; gc: synthetic name=\"(GC roots)\"; strong: synthetic name=\"(Strong roots)\"
         h: hidden 1; ar: array 20; st: string 300; ob: object 4000; co: code 50000; cl: closure 600000
         re: regexp 7000000; na: native 80000000; nu: number 900000000
         arr: object 8 name=\"Array\"; el: array 12; sys: object 900000000 name=\"SystemObject\"
         root -element-> gc; gc -element-> strong; strong -internal-> sys
         gc -element-> h; gc -element-> ar; gc -element-> st; gc -element-> ob; gc -element-> co
         gc -element-> cl; gc -element-> re; gc -element-> na; gc -element-> nu; gc -element-> arr
         arr -internal:elements-> el",
        Format::Newest { extra_native_bytes: 10 },
    );
    let st = heapsnap::statistics(&s, &a);
    assert_eq!(st.total, 1_887_654_351);
    assert_eq!((st.native.total, st.native.typed_arrays), (80_000_010, 0));
    assert_eq!(st.v8heap.total, 1_807_654_341);
    assert_eq!(
        (
            st.v8heap.code,
            st.v8heap.js_arrays,
            st.v8heap.strings,
            st.v8heap.system
        ),
        (50_000, 20, 300, 1)
    );
}

/// `heapSnapshotRetainingPaths*` shape, newest format (no user roots): distances count from the
/// root at 0, through `(GC roots)` and `(Stack roots)`.
#[test]
fn distances_without_user_roots() {
    check_format(
        "root: synthetic; gc: synthetic name=\"(GC roots)\"; stack: synthetic name=\"(Stack roots)\"
         A: object 1; A1: object 1; A2: object 1; B: object 1; C: object 1; E: object 1
         root -element-> gc; gc -element-> stack; stack -internal-> A; stack -internal-> B
         A -property-> A1; A1 -property-> A2; A2 -property-> C; B -property-> C; C -property-> E",
        Format::Newest { extra_native_bytes: 0 },
        expect![[r#"
            root         class=(synthetic)    d=0          self=0      ret=6        idom=root
            (GC roots)   class=(synthetic)    d=1          self=0      ret=6        idom=root
            (Stack roots) class=(synthetic)    d=2          self=0      ret=6        idom=(GC roots)
            A            class=A              d=3          self=1      ret=3        idom=(Stack roots)
            A1           class=A1             d=4          self=1      ret=2        idom=A
            A2           class=A2             d=5          self=1      ret=1        idom=A1
            B            class=B              d=3          self=1      ret=1        idom=(Stack roots)
            C            class=C              d=4          self=1      ret=2        idom=(Stack roots)
            E            class=E              d=5          self=1      ret=1        idom=C
            summary:
              A count=1 shallow=1 retained=3 distance=3
              A1 count=1 shallow=1 retained=2 distance=4
              C count=1 shallow=1 retained=2 distance=4
              A2 count=1 shallow=1 retained=1 distance=5
              B count=1 shallow=1 retained=1 distance=3
              E count=1 shallow=1 retained=1 distance=5
            stats: total=6 v8heap=6 (code=0 strings=0 js_arrays=0 system=0) native=0 (typed_arrays=0)
        "#]],
    );
}

/// The WeakMap rules: the table → value edge is not a dominator edge (the key alone holds the
/// value), and the value's distance is the larger of key + 1 and table + 1.
#[test]
fn weakmap_ephemerons() {
    let pair = "1 / part of key (Key @7) -> value (Value @9) pair in WeakMap (table @5)";
    check_format(
        &format!(
            "root: synthetic; gc: synthetic name=\"(GC roots)\"; table: object 10 name=\"WeakMap\" id=5
             key: object 20 name=\"Key\" id=7; value: object 40 name=\"Value\" id=9; far: object 1 name=\"Holder\"
             root -element-> gc; gc -element-> table; gc -element-> far; far -property:k-> key
             table -internal:{pair}-> value; key -internal:{pair}-> value"
        ),
        Format::Newest { extra_native_bytes: 0 },
        expect![[r#"
            root         class=(synthetic)    d=0          self=0      ret=71       idom=root
            (GC roots)   class=(synthetic)    d=1          self=0      ret=71       idom=root
            WeakMap      class=WeakMap        d=2          self=10     ret=10       idom=(GC roots)
            Key          class=Key            d=3          self=20     ret=60       idom=Holder
            Value        class=Value          d=4          self=40     ret=40       idom=Key
            Holder       class=Holder         d=2          self=1      ret=61       idom=(GC roots)
            summary:
              Holder count=1 shallow=1 retained=61 distance=2
              Key count=1 shallow=20 retained=60 distance=3
              Value count=1 shallow=40 retained=40 distance=4
              WeakMap count=1 shallow=10 retained=10 distance=2
            stats: total=71 v8heap=71 (code=0 strings=0 js_arrays=0 system=0) native=0 (typed_arrays=0)
        "#]],
    );
}

/// Plain objects get `{a, b}` names when a property set repeats; a superset takes the largest
/// matching definition. A class's retained size does not count instances dominated by another
/// instance of the same class.
#[test]
fn interfaces_and_nested_class_retained_size() {
    check_format(
        "root: synthetic; gc: synthetic name=\"(GC roots)\"
         o1: object 10 name=\"Object\"; o2: object 10 name=\"Object\"; o3: object 10 name=\"Object\"
         x: string 5; n1: object 7 name=\"Node\"; n2: object 7 name=\"Node\"
         root -element-> gc; gc -element-> o1; gc -element-> o2; gc -element-> o3; gc -element-> n1
         o1 -property:a-> x; o1 -property:b-> x; o2 -property:b-> x; o2 -property:a-> x
         o3 -property:a-> x; o3 -property:b-> x; o3 -property:c-> x; n1 -property:next-> n2",
        Format::Newest {
            extra_native_bytes: 0,
        },
        expect![[r#"
            root         class=(synthetic)    d=0          self=0      ret=49       idom=root
            (GC roots)   class=(synthetic)    d=1          self=0      ret=49       idom=root
            Object       class=Object         d=2          self=10     ret=10       idom=(GC roots)
            Object       class=Object         d=2          self=10     ret=10       idom=(GC roots)
            Object       class=Object         d=2          self=10     ret=10       idom=(GC roots)
            x            class=(string)       d=3          self=5      ret=5        idom=(GC roots)
            Node         class=Node           d=2          self=7      ret=14       idom=(GC roots)
            Node         class=Node           d=3          self=7      ret=7        idom=Node
            summary:
              Object count=3 shallow=30 retained=30 distance=2
              Node count=2 shallow=14 retained=14 distance=2
              (string) count=1 shallow=5 retained=5 distance=3
            stats: total=49 v8heap=49 (code=0 strings=5 js_arrays=0 system=0) native=0 (typed_arrays=0)
        "#]],
    );
}

/// An object class named like a class DevTools derives (`Function`, `(string)`) keeps its own
/// row. DevTools' string-keyed aggregates let the later class overwrite the earlier one, so its
/// Summary loses a row here; leakhound reports both.
#[test]
fn object_class_named_like_a_derived_class_keeps_its_row() {
    let (s, a) = crate::load(
        "root: synthetic; gc: synthetic name=\"(GC roots)\"; f: closure 3 name=\"f\"; o: object 5 name=\"Function\"
         root -element-> gc; gc -element-> f; gc -element-> o",
        Format::Newest { extra_native_bytes: 0 },
    );
    let rows: Vec<(String, u64)> = heapsnap::summary(&s, &a)
        .into_iter()
        .map(|r| (r.name, r.shallow_size))
        .collect();
    assert_eq!(
        rows,
        [("Function".to_owned(), 5), ("Function".to_owned(), 3)]
    );
}

/// Detached DOM state spreads from native nodes of known state and renames them.
#[test]
fn detached_dom_nodes() {
    check_format(
        "root: synthetic; gc: synthetic name=\"(GC roots)\"; holder: object 1 name=\"Holder\"
         div: native 100 name=\"<div id=x>\" detachedness=2; span: native 50 name=\"<span>\"; live: native 30 name=\"<p class=a>\" detachedness=1
         root -element-> gc; gc -element-> holder; holder -property:d-> div; div -internal:child-> span; gc -element-> live",
        Format::Newest { extra_native_bytes: 0 },
        expect![[r#"
            root         class=(synthetic)    d=0          self=0      ret=181      idom=root
            (GC roots)   class=(synthetic)    d=1          self=0      ret=181      idom=root
            Holder       class=Holder         d=2          self=1      ret=151      idom=(GC roots)
            Detached <div id=x> class=Detached <div> d=3          self=100    ret=150      idom=Holder
            Detached <span> class=Detached <span> d=4          self=50     ret=50       idom=Detached <div id=x>
            <p class=a>  class=<p>            d=2          self=30     ret=30       idom=(GC roots)
            summary:
              Holder count=1 shallow=1 retained=151 distance=2
              Detached <div> count=1 shallow=100 retained=150 distance=3
              Detached <span> count=1 shallow=50 retained=50 distance=4
              <p> count=1 shallow=30 retained=30 distance=2
            stats: total=181 v8heap=1 (code=0 strings=0 js_arrays=0 system=0) native=180 (typed_arrays=0)
        "#]],
    );
}
