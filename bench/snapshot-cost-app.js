'use strict';
// An app under test for bench/snapshot-cost.sh: a heap of one shape, grown to about --mb MB of
// heapUsed, then idle.
//
// usage: node --expose-gc bench/snapshot-cost-app.js --shape SHAPE [--mb N]
//
// Shapes (N defaults to 50; sizes are for Node's official builds, without pointer compression):
//   tiny          one plain array of `{a: i, b: i}` (48 bytes each with its array slot)
//   points        one array of `{x: i + 0.5, y: i + 0.25}`: an object and two boxed doubles each
//   numbers       one array of boxed doubles `i + 0.5` (24 bytes and one snapshot node each)
//   chunks        arrays of 1,000 boxed doubles each (the same numbers without one long array: no
//                 array over 16K elements, so nothing in the large object space)
//   shortstrings  one array of distinct short strings `s<i>` (about 32 bytes each)
//   refs          one array of references to 16 shared objects (8 bytes of heap per element; the
//                 pathological case: V8 names each distinct array index once, ~1.1 KB each)
//   strings       one array of distinct base64-like strings of 1 to 4 KB each
//   bigstrings    one array of distinct 1 MB base64-like strings (few objects, big bytes, all in
//                 V8's large object space)
//   buffers       one array of 1 MB Buffers filled with random bytes: N MB outside the JS heap
//                 (`external`), so heapUsed stays small
// Objects are added in batches until heapUsed, after a full GC when `--expose-gc` is given,
// reaches N MB (for buffers: until N MB of them); it gives up (exit 1) if RSS passes 4 N + 500 MB
// first. Strings are flat (sequential) strings made in JS: building them leaves no freed malloc
// memory that the snapshot could reuse. Then it prints `heapUsed <bytes>` and `rss <bytes>` on
// stdout, then `ready`, and stays alive (a timer, no socket) until killed. No npm dependencies.

const crypto = require('node:crypto');

const args = process.argv.slice(2);
let shape = null;
let mb = 50;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--shape') shape = args[++i];
  else if (args[i] === '--mb') mb = Number(args[++i]);
  else {
    console.error(`unknown argument ${args[i]}`);
    process.exit(2);
  }
}

// Pseudo-random base64-like text of n characters, made in JS (no malloc'd garbage left behind
// for the snapshot to reuse), as one flat string.
let seed = 1;
const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function text(prefix, n) {
  const parts = [prefix];
  const codes = new Array(1024);
  for (let done = 0; done < n; done += 1024) {
    const len = Math.min(1024, n - done);
    codes.length = len;
    for (let k = 0; k < len; k++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      codes[k] = alphabet.charCodeAt(seed >>> 26);
    }
    parts.push(String.fromCharCode.apply(null, codes));
  }
  return parts.join('');
}

const shared = Array.from({ length: 16 }, (_, i) => ({ shared: i }));

// Each adds a batch of objects of the shape to `items`.
const builders = {
  tiny(items) {
    for (let k = 0; k < 10_000; k++) items.push({ a: items.length, b: items.length });
  },
  points(items) {
    for (let k = 0; k < 10_000; k++) items.push({ x: items.length + 0.5, y: items.length + 0.25 });
  },
  numbers(items) {
    if (items.length === 0) items.push(null); // keeps the array PACKED_ELEMENTS: boxed doubles
    for (let k = 0; k < 10_000; k++) items.push(items.length + 0.5);
  },
  chunks(items) {
    const chunk = [null]; // PACKED_ELEMENTS: boxed doubles (a [] of doubles stores them unboxed)
    for (let k = 1; k < 1000; k++) chunk.push(items.length * 1000 + k + 0.5);
    items.push(chunk);
  },
  shortstrings(items) {
    for (let k = 0; k < 10_000; k++) items.push(['s', items.length].join(''));
  },
  refs(items) {
    for (let k = 0; k < 10_000; k++) items.push(shared[items.length & 15]);
  },
  strings(items) {
    for (let k = 0; k < 100; k++) {
      items.push(text(`${items.length}:`, 1024 + Math.floor(Math.random() * 3073)));
    }
  },
  bigstrings(items) {
    items.push(text(`${items.length}:`, 1024 * 1024));
  },
  buffers(items) {
    items.push(crypto.randomFillSync(Buffer.alloc(1024 * 1024)));
  },
};
const build = builders[shape];
if (!build) {
  console.error(`--shape must be one of ${Object.keys(builders).join(', ')}`);
  process.exit(2);
}

const target = mb * 1024 * 1024;
const items = [];
globalThis.items = items;
const heapUsed = () => process.memoryUsage().heapUsed;
if (shape === 'buffers') {
  while (items.length < mb) build(items);
} else {
  for (;;) {
    build(items);
    if (heapUsed() < target) {
      if (process.memoryUsage.rss() > 4 * target + 500 * 1024 * 1024) {
        console.error(`RSS ${process.memoryUsage.rss()}, heapUsed only ${heapUsed()}: giving up`);
        process.exit(1);
      }
      continue;
    }
    if (typeof globalThis.gc !== 'function') break;
    globalThis.gc();
    if (heapUsed() >= target) break;
  }
}

const usage = process.memoryUsage();
console.log(`heapUsed ${usage.heapUsed}`);
console.log(`rss ${usage.rss}`);
console.log('ready');
setInterval(() => {}, 60_000);
