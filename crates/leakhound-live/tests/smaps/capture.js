// Captures the /proc/PID/smaps fixtures of leakhound's `smaps` tests, with V8's own figures
// from the same process.
//
//   node capture.js OUTDIR
//
// A child node process goes through four phases, each adding to what the previous ones hold:
// idle, 20 000 × 4 KiB Buffers (malloc's brk heap), 200 × 512 KiB Buffers (malloc's mmapped
// chunks), 1 M small JS objects (V8's heap). After each phase the parent reads the child's
// smaps from outside, then asks the child for `v8.getHeapStatistics()` and
// `process.memoryUsage()`, and writes PHASE.smaps and PHASE.json into OUTDIR.
'use strict';
const fs = require('fs');
const path = require('path');
const { fork } = require('child_process');

const PHASES = {
  idle: () => {},
  'buffers-4k': (keep) => { for (let i = 0; i < 20000; i++) keep.push(Buffer.alloc(4096, 1)); },
  'buffers-512k': (keep) => { for (let i = 0; i < 200; i++) keep.push(Buffer.alloc(512 * 1024, 1)); },
  objects: (keep) => { for (let i = 0; i < 1e6; i++) keep.push({ a: i, b: i * 2 }); },
};

if (process.argv[2] === '--child') {
  const v8 = require('v8');
  const keep = [];
  process.on('message', (msg) => {
    if (msg.run) {
      PHASES[msg.run](keep);
      process.send({ ran: msg.run });
    } else if (msg.stats) {
      process.send({ heap: v8.getHeapStatistics(), memory_usage: process.memoryUsage() });
    }
  });
  setInterval(() => {}, 1000);
} else {
  const out = process.argv[2];
  if (!out) throw new Error('usage: node capture.js OUTDIR');
  fs.mkdirSync(out, { recursive: true });
  const child = fork(__filename, ['--child']);
  const names = Object.keys(PHASES);
  let smaps, phase;
  const next = () => {
    phase = names.shift();
    if (phase === undefined) return child.kill();
    child.send({ run: phase });
  };
  child.on('message', (msg) => {
    if (msg.ran) {
      // Let the child settle (sweeping, idle-time GC tasks) before reading.
      setTimeout(() => {
        smaps = fs.readFileSync(`/proc/${child.pid}/smaps`, 'latin1');
        child.send({ stats: true });
      }, 1000);
    } else {
      fs.writeFileSync(path.join(out, `${phase}.smaps`), smaps, 'latin1');
      const meta = { node: process.version, phase, ...msg };
      fs.writeFileSync(path.join(out, `${phase}.json`), JSON.stringify(meta, null, 1) + '\n');
      next();
    }
  });
  next();
}
