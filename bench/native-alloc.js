// Malloc-heavy workload for the native tracker's overhead (bench/native-overhead.sh): about
// 3 M allocator calls per second of plain runtime on this machine kind. Every ArrayBuffer costs
// a calloc for its bytes and C++ allocations for its backing store; 128 MiB are retained, the
// rest churned.
'use strict';
const kept = [];
for (let i = 0; i < 2048; i++) kept.push(Buffer.alloc(64 * 1024, i & 255)); // retained
let sum = 0;
for (let i = 0; i < 400000; i++) {
  const b = new ArrayBuffer(i % 4 === 0 ? 8192 : 256); // churned
  sum += b.byteLength;
}
if (process.env.BENCH_VERBOSE) console.error(`kept ${kept.length} buffers, churned ${sum} bytes`);
