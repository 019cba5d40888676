'use strict';
// Plain objects in many shapes, for DevTools' interface inference
// (`{a, b, …}` class names): ties between {a, b} and {b, a}, subsets and
// supersets, counts around the min-count threshold (max(2, plain/1000)),
// property names with , ' " { } (JSON-quoted), long names around the
// 120-character limit (counted in UTF-16 units, so emoji count twice),
// names whose UTF-16 and UTF-8 sort orders differ, own `__proto__`,
// dictionary-mode objects, accessors, symbols, elements and empty objects.
const { run } = require('./lib/snapshot');

// Property values must be heap objects: a property holding a Smi has no
// edge in the snapshot, so DevTools would not see it.
const V = 'value';

// Builds a plain object with the given own property names, in order.
function make(props, v = V) {
  const o = {};
  for (const p of props) o[p] = v;
  return o;
}

function repeat(list, props, n) {
  for (let i = 0; i < n; i++) list.push(make(props));
}

run((keep) => {
  const objs = (keep.objs = []);

  // Bulk: enough plain objects that minCount = plain/1000 is above 2.
  // Smi-valued properties are invisible: these count as plain objects but
  // have no (or fewer) property edges.
  for (let i = 0; i < 12000; i++) objs.push({ id: i, value: i * 2 });
  for (let i = 0; i < 4000; i++) objs.push({ id: i, value: i, extra: 'e' });
  for (let i = 0; i < 2000; i++) objs.push({ x: V, y: V, z: [i] });

  // Counts spread around the threshold (~20).
  for (let c = 10; c <= 30; c++) repeat(objs, ['t' + c, 'u'], c);

  // Tie on the same property set in two orders: the first-seen wins.
  repeat(objs, ['a', 'b'], 60);
  repeat(objs, ['b', 'a'], 60);
  // Subsets and supersets: objects match the largest definition contained.
  repeat(objs, ['a', 'b', 'c'], 40);
  repeat(objs, ['a', 'b', 'c', 'd', 'e'], 5); // rare: matches {a, b, c}
  repeat(objs, ['c', 'a', 'q', 'b'], 4); // rare: matches {a, b, c}
  repeat(objs, ['a', 'zzz'], 3); // rare, and no definition is a subset: stays Object
  repeat(objs, ['m'], 50);
  repeat(objs, ['m', 'n'], 45);
  repeat(objs, ['n', 'o', 'm'], 3);

  // Property names that DevTools JSON-quotes.
  const quoted = ['with,comma', "it's", 'say "hi"', '{open', 'close}', '{}', 'plain', ',', '"', "'"];
  repeat(objs, quoted, 30);
  repeat(objs, quoted.slice(0, 3), 30);
  repeat(objs, ['a"b', 'c,d'], 25);

  // Around the 120 UTF-16-unit limit. "{" + first name is always taken;
  // later names are taken while length + formatted length <= 120.
  const n57 = 'p'.repeat(57);
  const n58 = 'q'.repeat(58);
  repeat(objs, [n57, n58, 'r'], 30); // "{" + 57 + 2 + 58 = 118, +1 = 119 <= 120: r taken
  repeat(objs, [n58, n58 + 'x', 'rr'], 30); // 1+58+2+59 = 120: 120+2 > 120 → cut
  repeat(objs, ['s'.repeat(59), 't'.repeat(59), 'u'], 30); // 121+1 > 120 → cut before u
  repeat(objs, ['🙂'.repeat(29), 'v'.repeat(59), 'w'], 30); // emoji: 58 units
  repeat(objs, ['🙂'.repeat(30), 'v'.repeat(59), 'w'], 30); // 60 units
  repeat(objs, ['L'.repeat(200), 'short'], 30); // first name alone > 120
  repeat(objs, ['L'.repeat(200), 'other'], 30); // same truncated interface name
  repeat(objs, ['x,'.repeat(30), 'y'], 30); // quoted name grows by the quotes
  repeat(objs, Array.from({ length: 40 }, (_, i) => 'field' + i), 30); // many short names

  // Sort order: U+FF10 vs an astral character (UTF-16 vs UTF-8 order differ).
  repeat(objs, ['\uFF10', '😀', 'a'], 30);
  repeat(objs, ['😀', '\uFF10'], 30);
  repeat(objs, ['😀', 'b', '\uFF10', '\uE000', 'ä'], 5);
  repeat(objs, ['ä', '\uE000'], 30);

  // An own property named __proto__ (skipped by inference, seen by matching).
  for (let i = 0; i < 30; i++) objs.push({ ['__proto__']: V, pa: V, pb: V });
  for (let i = 0; i < 30; i++) objs.push({ pa: V, pb: V });

  // Dictionary-mode objects (many properties, deletes).
  for (let i = 0; i < 40; i++) {
    const o = make(Array.from({ length: 40 }, (_, j) => 'd' + j), 'dict' + i);
    delete o.d3;
    objs.push(o);
  }
  // Accessors, symbols, elements, empty and null-prototype objects.
  for (let i = 0; i < 30; i++) {
    objs.push({ get acc() { return i; }, set acc(v) {}, plainToo: V });
  }
  const sym = Symbol('sym');
  for (let i = 0; i < 30; i++) objs.push({ [sym]: V, withSym: V });
  for (let i = 0; i < 30; i++) objs.push({ 0: V, 1: V, 2: V });
  for (let i = 0; i < 30; i++) objs.push({ 0: V, named: V });
  for (let i = 0; i < 30; i++) objs.push({});
  for (let i = 0; i < 30; i++) {
    const o = Object.create(null);
    o.nullProto = V;
    o.second = V;
    objs.push(o);
  }
  for (let i = 0; i < 30; i++) objs.push(Object.freeze({ frozen: V, second: V }));
  for (let i = 0; i < 30; i++) objs.push(JSON.parse(`{"parsed": "${i}", "json": "x", "third": [1]}`));
  for (let i = 0; i < 30; i++) objs.push(Object.assign({}, { assigned: V }, { later: V }));
  // Mixed visible (string) and invisible (Smi, double) properties.
  for (let i = 0; i < 30; i++) objs.push({ smi: i, str: V, dbl: i + 0.5, obj: {} });
  // Objects with nested plain objects.
  for (let i = 0; i < 100; i++) objs.push({ outer: { inner: { leaf: 'l' + i } } });
});
