// The DevTools oracle: loads heap snapshots into the real Chrome DevTools
// heap-snapshot worker (shipped inside chrome-devtools-mcp, pinned in
// package.json) and prints the Summary and Statistics numbers in exactly the
// shape of `leakhound summary --json`.
//
// Usage (Node 20 needs the polyfill; it is harmless on newer Node):
//   node --import <abs>/polyfill.mjs oracle.mjs SNAP1.heapsnapshot [SNAP2 …]
//   node --import <abs>/polyfill.mjs oracle.mjs --diff BASE CURRENT [BASE CURRENT …]
//
// stdout: ONE JSON object { "<path as given>": { node_count, edge_count,
//   total_size, statistics: {...}, classes: [...] }, … }
// With --diff: { "<BASE>\n<CURRENT>": { rows: [...] }, … }, the Comparison
//   view rows (what chrome-devtools-mcp's getClassDiffs computes) in the shape
//   of `leakhound diff --json`'s "classes".
// Any failure: message on stderr, exit code 1, nothing on stdout.
//
// Env LEAKHOUND_ORACLE_JOBS: how many snapshots to load at once (default: half
// the CPUs; each load keeps two worker threads busy).
// Env LEAKHOUND_ORACLE_VERBOSE=1: per-snapshot timings on stderr.

import fs from 'node:fs';
import os from 'node:os';

const MCP = new URL('./node_modules/chrome-devtools-mcp/build/src/', import.meta.url);

if (typeof Promise.withResolvers !== 'function') {
  throw new Error('Promise.withResolvers is missing: run node with --import <abs path>/polyfill.mjs');
}

const { HeapSnapshotManager } = await import(new URL('processors/HeapSnapshotManager.js', MCP).href);
const { DevTools } = await import(new URL('third_party/index.js', MCP).href);

// Reads the `"snapshot":{…}` header object (meta, node_count, edge_count, …)
// from the start of the file without parsing the rest. V8 writes it first.
function readHeader(file) {
  const fd = fs.openSync(file, 'r');
  try {
    let text = '';
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      text += buf.toString('latin1', 0, n);
      const start = text.indexOf('"snapshot"');
      if (start >= 0) {
        const open = text.indexOf('{', start);
        if (open >= 0) {
          // The header holds only numbers and string arrays without braces
          // in their strings, so brace counting is sufficient.
          let depth = 0;
          let inString = false;
          for (let i = open; i < text.length; i++) {
            const c = text[i];
            if (inString) {
              if (c === '\\') i++;
              else if (c === '"') inString = false;
            } else if (c === '"') inString = true;
            else if (c === '{') depth++;
            else if (c === '}' && --depth === 0) return JSON.parse(text.slice(open, i + 1));
          }
        }
      }
      if (text.length > 16 * 1024 * 1024) break;
    }
    throw new Error(`${file}: could not find the "snapshot" header object`);
  } finally {
    fs.closeSync(fd);
  }
}

const LOCATION_KEY = /^(-?\d+),(-?\d+),(-?\d+),/;

function classRow(key, agg) {
  let location = null;
  if (key.startsWith(',')) {
    if (key.slice(1) !== agg.name) throw new Error(`class key ${JSON.stringify(key)} does not match name ${JSON.stringify(agg.name)}`);
  } else {
    // Location-grouped object class: "<scriptId>,<line>,<column>,<className>".
    const m = LOCATION_KEY.exec(key);
    if (!m || key.slice(m[0].length) !== agg.name) {
      throw new Error(`unexpected class key ${JSON.stringify(key)} for name ${JSON.stringify(agg.name)}`);
    }
    location = { script_id: Number(m[1]), line: Number(m[2]), column: Number(m[3]) };
  }
  return {
    name: agg.name,
    location,
    count: agg.count,
    shallow_size: agg.self,
    retained_size: agg.maxRet,
    distance: agg.distance,
  };
}

function compareRows(a, b) {
  if (a.retained_size !== b.retained_size) return b.retained_size - a.retained_size;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  const la = a.location ? [a.location.script_id, a.location.line, a.location.column] : [-1, -1, -1];
  const lb = b.location ? [b.location.script_id, b.location.line, b.location.column] : [-1, -1, -1];
  for (let i = 0; i < 3; i++) if (la[i] !== lb[i]) return la[i] - lb[i];
  return 0;
}

async function analyse(manager, file) {
  const header = readHeader(file);
  const snapshot = await manager.getSnapshot(file);
  try {
    const proxy = snapshot.proxy;
    const staticData = proxy.staticData;
    if (staticData.nodeCount !== header.node_count) {
      throw new Error(`${file}: worker nodeCount ${staticData.nodeCount} != header node_count ${header.node_count}`);
    }
    const filter = new DevTools.HeapSnapshotModel.HeapSnapshotModel.NodeFilter();
    const aggregates = await proxy.aggregatesWithFilter(filter);
    const stats = await proxy.getStatistics();
    const classes = Object.entries(aggregates).map(([key, agg]) => classRow(key, agg));
    classes.sort(compareRows);
    return {
      node_count: staticData.nodeCount,
      // The worker sizes its edge array from the header's edge_count and
      // exposes no edge count of its own, so the header is the exact value.
      edge_count: header.edge_count,
      total_size: staticData.totalSize,
      statistics: {
        total: stats.total,
        v8heap: {
          total: stats.v8heap.total,
          code: stats.v8heap.code,
          strings: stats.v8heap.strings,
          js_arrays: stats.v8heap.jsArrays,
          system: stats.v8heap.system,
        },
        native: {
          total: stats.native.total,
          typed_arrays: stats.native.typedArrays,
        },
      },
      classes,
    };
  } finally {
    // Terminates the worker thread (HeapSnapshotManager.dispose() uses
    // iterator helpers that Node 20 lacks, so dispose per snapshot).
    await manager.disposeSnapshot(file);
  }
}

// The Comparison view of CURRENT against BASE, as HeapSnapshotManager's
// getClassDiffs computes it, but keyed by class key so locations survive.
async function compare(manager, base, current) {
  const [baseSnapshot, currentSnapshot] = await Promise.all([
    manager.getSnapshot(base),
    manager.getSnapshot(current),
  ]);
  try {
    const interfaceDefinitions = await currentSnapshot.proxy.interfaceDefinitions();
    const aggregatesForDiff = await baseSnapshot.proxy.aggregatesForDiff(interfaceDefinitions);
    const diffs = await currentSnapshot.proxy.calculateSnapshotDiff(baseSnapshot.proxy.uid, aggregatesForDiff);
    const rows = Object.entries(diffs)
      .filter(([, d]) => d.addedCount > 0 || d.removedCount > 0)
      .map(([key, d]) => {
        const { name, location } = classRow(key, { name: d.name });
        return {
          name,
          location,
          new_count: d.addedCount,
          deleted_count: d.removedCount,
          count_delta: d.countDelta,
          alloc_size: d.addedSize,
          freed_size: d.removedSize,
          size_delta: d.sizeDelta,
        };
      });
    return { rows };
  } finally {
    await manager.disposeSnapshot(base);
    await manager.disposeSnapshot(current);
  }
}

async function mainDiff(args) {
  if (args.length === 0 || args.length % 2 !== 0) {
    process.stderr.write('usage: node --import <abs>/polyfill.mjs oracle.mjs --diff BASE CURRENT [BASE CURRENT …]\n');
    return 2;
  }
  const manager = new HeapSnapshotManager();
  const out = {};
  for (let i = 0; i < args.length; i += 2) {
    const t0 = performance.now();
    out[`${args[i]}\n${args[i + 1]}`] = await compare(manager, args[i], args[i + 1]);
    if (process.env.LEAKHOUND_ORACLE_VERBOSE) {
      process.stderr.write(`oracle: diff ${args[i + 1]}: ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
    }
  }
  await new Promise((resolve, reject) =>
    process.stdout.write(JSON.stringify(out) + '\n', err => (err ? reject(err) : resolve())));
  return 0;
}

async function main() {
  if (process.argv[2] === '--diff') return mainDiff(process.argv.slice(3));
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: node --import <abs>/polyfill.mjs oracle.mjs SNAP.heapsnapshot [SNAP2 …]\n');
    return 2;
  }
  const jobs = Math.max(1, Number(process.env.LEAKHOUND_ORACLE_JOBS) || Math.floor(os.availableParallelism() / 2));
  const manager = new HeapSnapshotManager();
  const results = new Map();
  let next = 0;
  async function runner() {
    while (next < files.length) {
      const file = files[next++];
      const t0 = performance.now();
      results.set(file, await analyse(manager, file));
      if (process.env.LEAKHOUND_ORACLE_VERBOSE) {
        process.stderr.write(`oracle: ${file}: ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, runner));
  const out = {};
  for (const file of files) out[file] = results.get(file);
  await new Promise((resolve, reject) =>
    process.stdout.write(JSON.stringify(out) + '\n', err => (err ? reject(err) : resolve())));
  return 0;
}

let code;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`oracle: ${err && err.stack ? err.stack : err}\n`);
  code = 1;
}
// All workers are terminated above; exit explicitly anyway so that a stray
// timer in the DevTools bundle can never keep the process alive.
process.exit(code);
