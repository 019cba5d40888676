'use strict';
// Shared driver for the scenario scripts:
//   node scenarios/<name>.js OUT.heapsnapshot
// builds a heap shape, writes a heap snapshot to OUT (mode 0600) and exits.
const fs = require('node:fs');
const v8 = require('node:v8');

// Everything a scenario wants in the snapshot hangs off this global, so it is
// reachable from the global object (a user root on Node 20).
const keep = (globalThis.leakhoundKeep = Object.create(null));

function run(build) {
  const out = process.argv[2];
  if (!out || !out.endsWith('.heapsnapshot')) {
    process.stderr.write(`usage: node ${process.argv[1]} OUT.heapsnapshot\n`);
    process.exit(2);
  }
  Promise.resolve()
    .then(() => build(keep))
    .then(() => {
      // Synchronous from here on: no task boundary between the last
      // allocation and the snapshot (WeakRef targets made in this turn stay).
      const file = v8.writeHeapSnapshot(out);
      fs.chmodSync(file, 0o600);
      // Pending timers, promises and handles must not keep us alive.
      process.exit(0);
    })
    .catch((err) => {
      process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
      process.exit(1);
    });
}

// Lets one macrotask pass (e.g. so that earlier WeakRef targets may die).
function nextTask() {
  return new Promise((resolve) => setImmediate(resolve));
}

module.exports = { run, nextTask, keep };
