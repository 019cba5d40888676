'use strict';
// Usage: node tests/alloc/tracked.js OUTDIR
//
// Takes two heap snapshots with allocation tracking on (DevTools' "Allocation instrumentation
// on timeline"), through the in-process inspector: OUTDIR/s1.heapsnapshot, then 500 `Order`
// objects are leaked by `placeOrder` into a module-level `orders` Map, then
// OUTDIR/s2.heapsnapshot. The snapshots carry trace_function_infos and trace_tree, so each
// Order's allocation stack (placeOrder ← handleCheckout) is known. Files are mode 0600.
const fs = require('node:fs');
const path = require('node:path');
const inspector = require('node:inspector');

const orders = new Map();

class Order {
  constructor(id) {
    this.id = id;
    this.items = [id, id + 1];
  }
}

function placeOrder(id) {
  orders.set(id, new Order(id));
}

function handleCheckout(n) {
  for (let i = 0; i < n; i++) placeOrder(i);
}

function post(session, method, params) {
  return new Promise((resolve, reject) =>
    session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));
}

async function snapshot(session, file) {
  const fd = fs.openSync(file, 'w', 0o600);
  const write = (m) => fs.writeSync(fd, m.params.chunk);
  session.on('HeapProfiler.addHeapSnapshotChunk', write);
  try {
    await post(session, 'HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  } finally {
    session.off('HeapProfiler.addHeapSnapshotChunk', write);
    fs.closeSync(fd);
  }
}

async function main() {
  const out = process.argv[2];
  if (!out) throw new Error('usage: node tracked.js OUTDIR');
  fs.mkdirSync(out, { recursive: true });
  const session = new inspector.Session();
  session.connect();
  try {
    await post(session, 'HeapProfiler.enable');
    await post(session, 'HeapProfiler.startTrackingHeapObjects', { trackAllocations: true });
    await snapshot(session, path.join(out, 's1.heapsnapshot'));
    handleCheckout(500);
    await snapshot(session, path.join(out, 's2.heapsnapshot'));
    await post(session, 'HeapProfiler.stopTrackingHeapObjects', { reportProgress: false });
  } finally {
    session.disconnect();
  }
  if (orders.size !== 500) throw new Error('orders were not kept');
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
