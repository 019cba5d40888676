'use strict';
// A Node app for `bench/watch.sh`: about 1 GB of RSS spread over many mappings, then idle.
//
// usage: node --expose-gc --max-old-space-size=4096 bench/watch-app.js [--objects N]
//            [--buffers-mb M] [--workers W]
//
//   --objects N      small JS objects kept alive (default 7,000,000 with 6 fields each: 538 MB
//                    heapUsed, ~600 MB of V8 heap pages in ~2,200 mappings on Node 20)
//   --buffers-mb M   Buffers kept alive, in MB (default 300), of mixed sizes: 1, 4, 16 and 64 KiB
//                    from malloc's arenas, and 160 KiB–1 MiB ones that malloc maps one by one
//                    (each followed by a spare mapping that is freed at the end, so that the kept
//                    ones do not merge into one mapping: ~520 mappings)
//   --workers W      worker threads (default 3), each with its own V8 heap, a malloc thread
//                    arena (8 MB of small Buffers each) and a thread stack
//
// With the defaults: about 1,010 MB RSS and 2,950 mappings at `ready`, 975 MB and 2,780 once
// V8's memory reducer has run (~45 s after the start). Prints `ready rss_mb=R maps=N
// heap_used_mb=H external_mb=E ...` on stdout once built (maps: lines of /proc/self/maps), then
// idles until killed: nothing is allocated afterwards. With --expose-gc it runs two full GCs
// first (frees the spare mappings at once).
const fs = require('fs');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');

if (!isMainThread) {
  // Small Buffers, allocated on this thread: malloc serves them from a thread arena.
  const keep = [];
  const sizes = [512, 2048, 8192, 24576];
  let total = 0;
  for (let i = 0; total < workerData.bytes; i++) {
    const b = Buffer.alloc(sizes[i % sizes.length], i & 0xff);
    keep.push(b);
    total += b.length;
  }
  // A little V8 heap of its own.
  const objs = [];
  for (let i = 0; i < 100000; i++) objs.push({ i, w: workerData.id });
  globalThis.keep = [keep, objs];
  parentPort.postMessage('built');
  parentPort.on('message', () => {}); // stays alive, idle
  return;
}

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const objects = arg('--objects', 7000000);
const buffersMb = arg('--buffers-mb', 300);
const workers = arg('--workers', 3);

const keep = [];
globalThis.keep = keep; // kept alive for good

// JS objects, in arrays of 100,000 (no single huge array).
const CHUNK = 100000;
for (let made = 0; made < objects; made += CHUNK) {
  const arr = new Array(Math.min(CHUNK, objects - made));
  for (let j = 0; j < arr.length; j++) {
    const k = made + j;
    arr[j] = { id: k, parent: j > 0 ? arr[j - 1] : null, kind: k & 7, flags: k & 0xffff, a: k & 3, b: null };
  }
  keep.push(arr);
}

// Buffers of mixed sizes. Large ones (>= 128 KiB, malloc's default mmap threshold) get their
// own mapping each; a spare one is allocated after each kept one and freed at the end, which
// leaves a hole between two kept mappings (adjacent anonymous mappings with the same flags would
// merge into one).
const small = [1024, 4096, 16384, 65536];
const large = [160 * 1024, 256 * 1024, 512 * 1024, 1024 * 1024];
const bufs = [];
let spares = [];
let bytes = 0;
const target = buffersMb * 1024 * 1024;
for (let i = 0; bytes < target; i++) {
  // About half of the bytes in small Buffers, half in large ones.
  if (i % 8 === 7) {
    const size = large[(i >> 3) % large.length];
    bufs.push(Buffer.alloc(size, i & 0xff));
    spares.push(Buffer.allocUnsafeSlow(4096 + 128 * 1024));
    bytes += size;
  } else {
    const size = small[i % small.length];
    bufs.push(Buffer.alloc(size, i & 0xff));
    bytes += size;
  }
}
keep.push(bufs);

function rssMb() {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Math.round(Number(m[1]) / 1024);
}
function mapCount() {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean).length;
}

let built = 0;
const threads = [];
function ready() {
  spares = null; // freed by the next full GC: holes between the kept large Buffers
  if (global.gc) global.gc();
  // Let the GC's frees (and any sweeping) happen before reading the figures.
  setTimeout(() => {
    if (global.gc) global.gc();
    const mem = process.memoryUsage();
    console.log(
      `ready rss_mb=${rssMb()} maps=${mapCount()} heap_used_mb=${Math.round(mem.heapUsed / 1048576)} ` +
        `external_mb=${Math.round(mem.external / 1048576)} objects=${objects} buffers=${bufs.length} ` +
        `workers=${threads.length}`
    );
  }, 1000);
  setInterval(() => {}, 1 << 30); // idle
}
if (workers === 0) ready();
for (let w = 0; w < workers; w++) {
  const t = new Worker(__filename, { workerData: { id: w, bytes: 8 * 1024 * 1024 } });
  t.on('message', () => {
    if (++built === workers) ready();
  });
  t.on('error', (e) => {
    console.error(e);
    process.exit(1);
  });
  threads.push(t);
}
