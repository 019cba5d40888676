'use strict';
// Preloaded into the apps of bench/snapshot-cost.sh: reports what a tool can see of the heap
// before it takes a snapshot.
//
// usage: node --expose-gc --require ./bench/snapshot-cost-stats.js APP.js ...
//
// On SIGUSR2 it runs a full GC (when `--expose-gc` is given) and prints one line on stdout:
// `stats {JSON}`, with process.memoryUsage() (heapUsed, heapTotal, external, arrayBuffers, rss),
// v8.getHeapStatistics() and `spaces`, the space_used_size of each of
// v8.getHeapSpaceStatistics()'s spaces (old_space, large_object_space, ...), all in bytes.
// It adds nothing to the app's heap worth counting. No npm dependencies.

const v8 = require('node:v8');

process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') globalThis.gc();
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.space_used_size;
  const stats = { ...process.memoryUsage(), heap: v8.getHeapStatistics(), spaces };
  process.stdout.write(`stats ${JSON.stringify(stats)}\n`);
});
