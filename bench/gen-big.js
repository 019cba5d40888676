'use strict';
// Usage: node bench/gen-big.js OUT.heapsnapshot SIZE_HINT [NAME_BYTES]
//
// Writes a large, realistic Node heap snapshot for benchmarks. SIZE_HINT is a number of items
// (`3000000`, `2.5m`, `800k`) or a preset: `1g` (a file of at least 1.0 GB) or `4g` (at least
// 4.0 GB). Each item is an `Item` instance with a string name, an array and a boxed number; items
// are kept in Maps of at most 1M entries, grouped into arrays of 100 (`Group`), and every 10th
// item is captured by a closure. NAME_BYTES (default: `'item' + i`, ~10 bytes) pads every name to
// that many bytes, which adds file size without adding nodes.
//
// Measured on Node 20.20 (2 cores): per item ~5.25 nodes, ~15.4 edges, ~416 bytes of file
// (+ NAME_BYTES), and V8's snapshot writer peaks at ~2.4 KB of RSS per item (+ 3 x NAME_BYTES).
// `1g` = 2.5M items: 1.04 GB, 13.1M nodes, 38.4M edges, 59 s, 6.0 GB peak RSS.
// `1m 400`: 0.81 GB, 5.3M nodes, 15.5M edges, 40 s, 3.7 GB peak RSS.
// `4g` = 9.6M items: ~4.2 GB, ~50M nodes (estimated); needs ~23 GB of RAM. On a 24 GB machine,
// `5m 400` gives ~4.1 GB with ~26M nodes for ~18 GB of RAM (also estimated).
//
// Re-executes itself with a larger --max-old-space-size when needed. Progress, timings and peak
// RSS go to stderr; the path of the snapshot goes to stdout.

const fs = require('node:fs');
const path = require('node:path');
const v8 = require('node:v8');
const { spawnSync } = require('node:child_process');

const PRESETS = { '1g': 2_500_000, '4g': 9_600_000 };
const MAP_CHUNK = 1_000_000; // a Map holds at most 2^24 entries; stay far below
const GROUP = 100;

function usage(message) {
  console.error(`${message}\nusage: node bench/gen-big.js OUT.heapsnapshot SIZE_HINT [NAME_BYTES]   (SIZE_HINT: items like 2.5m, or 1g / 4g)`);
  process.exit(2);
}

function parseSize(hint) {
  const preset = PRESETS[hint.toLowerCase()];
  if (preset) return preset;
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(hint);
  if (!m) usage(`invalid SIZE_HINT ${JSON.stringify(hint)}`);
  const scale = { '': 1, k: 1e3, m: 1e6 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * scale);
}

// JS heap needed: ~200 bytes per item (+ the name) while building, with room for the GC.
function heapLimitMb(items, nameBytes) {
  return Math.max(4096, Math.ceil((items * (400 + 2 * nameBytes)) / 2 ** 20) + 2048);
}

// A flat (not concatenated) one-byte string of exactly `bytes` bytes starting with `prefix`.
function paddedName(prefix, bytes) {
  return Buffer.from(prefix.padEnd(bytes, '-abcdefghijklmnopqrstuvwxyz'), 'latin1').toString('latin1');
}

class Item {
  constructor(i, nameBytes) {
    this.id = i;
    this.name = nameBytes > 0 ? paddedName('item' + i, nameBytes) : 'item' + i;
    this.tags = [i];
    this.score = i + 0.5;
    this.next = null;
  }
}

class Group {
  constructor(id) {
    this.id = id;
    this.members = [];
  }
}

function build(n, nameBytes) {
  const maps = [];
  const groups = [];
  const callbacks = [];
  let map = null;
  let group = null;
  let prev = null;
  for (let i = 0; i < n; i++) {
    if (i % MAP_CHUNK === 0) maps.push((map = new Map()));
    if (i % GROUP === 0) groups.push((group = new Group(groups.length)));
    const item = new Item(i, nameBytes);
    if (prev) prev.next = item;
    prev = item;
    map.set(i, item);
    group.members.push(item);
    if (i % 10 === 0) callbacks.push(() => item.id);
  }
  return { maps, groups, callbacks };
}

function main() {
  const [out, hint, nameArg = '0'] = process.argv.slice(2);
  if (!out || !hint) usage('missing arguments');
  const items = parseSize(hint);
  const nameBytes = Number(nameArg);
  if (!Number.isInteger(nameBytes) || nameBytes < 0) usage(`invalid NAME_BYTES ${JSON.stringify(nameArg)}`);

  const needMb = heapLimitMb(items, nameBytes);
  const haveMb = v8.getHeapStatistics().heap_size_limit / 2 ** 20;
  if (haveMb < needMb && !process.env.GEN_BIG_CHILD) {
    const child = spawnSync(process.execPath, [`--max-old-space-size=${needMb}`, __filename, out, hint, nameArg], {
      stdio: 'inherit',
      env: { ...process.env, GEN_BIG_CHILD: '1' },
    });
    process.exit(child.status ?? 1);
  }

  const file = path.resolve(out);
  const t0 = process.hrtime.bigint();
  globalThis.benchData = build(items, nameBytes);
  const t1 = process.hrtime.bigint();
  console.error(
    `built ${items} items in ${(Number(t1 - t0) / 1e9).toFixed(1)}s (RSS ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GB); writing ${file}`,
  );
  v8.writeHeapSnapshot(file);
  fs.chmodSync(file, 0o600);
  const t2 = process.hrtime.bigint();
  const size = fs.statSync(file).size;
  console.error(
    `wrote ${(size / 1e9).toFixed(3)} GB in ${(Number(t2 - t1) / 1e9).toFixed(1)}s; ` +
      `peak RSS ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GB`,
  );
  console.log(file);
}

main();
