'use strict';
// The app under test for bench/capture.sh: a heap of 100 MB+ of small JS objects, then idle.
//
// usage: node bench/capture-app.js [--objects N] [--self-snapshot FILE]
//
// Builds N (default 1,000,000) `Session` objects, each with two short strings, a number and a
// small array, in a Map, and prints `heapUsed <bytes>` and `rss <bytes>` on stdout once built,
// then `ready`. It then stays alive (a timer, no socket) until killed.
// With --self-snapshot FILE it instead writes a heap snapshot in-process with
// `v8.writeHeapSnapshot(FILE)` right after building the heap and prints, one `key value` per
// line: `snapshot_seconds` (wall time of the call), `rss_before_kb` (VmRSS before the call) and
// `hwm_kb` (VmHWM, the peak RSS, read right after it), then exits. No npm dependencies.

const fs = require('node:fs');
const v8 = require('node:v8');

const args = process.argv.slice(2);
let objects = 1_000_000;
let selfSnapshot = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--objects') objects = Number(args[++i]);
  else if (args[i] === '--self-snapshot') selfSnapshot = args[++i];
  else {
    console.error(`unknown argument ${args[i]}`);
    process.exit(2);
  }
}

class Session {
  constructor(i) {
    this.id = i;
    this.user = `user-${i}`;
    this.token = `tok-${(i * 2654435761 >>> 0).toString(16)}-${i}`;
    this.tags = [i & 7, i & 15];
  }
}

const sessions = new Map();
for (let i = 0; i < objects; i++) sessions.set(i, new Session(i));
globalThis.sessions = sessions;

// VmRSS / VmHWM of this process, in kB.
function status(field) {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}

const usage = process.memoryUsage();
console.log(`heapUsed ${usage.heapUsed}`);
console.log(`rss ${usage.rss}`);

if (selfSnapshot) {
  const rssBefore = status('VmRSS');
  const start = process.hrtime.bigint();
  v8.writeHeapSnapshot(selfSnapshot);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`snapshot_seconds ${seconds.toFixed(2)}`);
  console.log(`rss_before_kb ${rssBefore}`);
  console.log(`hwm_kb ${status('VmHWM')}`);
  process.exit(0);
}

console.log('ready');
setInterval(() => {}, 60_000);
