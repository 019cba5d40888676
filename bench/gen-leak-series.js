'use strict';
// Usage: node bench/gen-leak-series.js OUTDIR [SIZE_HINT] [LEAKS_PER_ROUND]
//
// Writes three heap snapshots of ONE Node process with a real leak growing between them, for
// three-snapshot leak detection (`leakhound leaks s1 s2 s3`, `memlab find-leaks --baseline s1
// --target s2 --final s3`):
//
//   OUTDIR/s1.heapsnapshot  baseline: a large steady heap (the `Item`s of bench/gen-big.js: Maps,
//                           `Group` arrays, closures), most of every file
//   OUTDIR/s2.heapsnapshot  target: after leak round 1 (LEAKS_PER_ROUND `LeakedRequest`s, each
//                           with a flat string `url` and a small array `headers`, pushed into the
//                           module-level array `leaks` and the Map `handleMap`), plus
//                           LEAKS_PER_ROUND / 10 `InflightRequest`s held in `inflight`
//   OUTDIR/s3.heapsnapshot  final: after leak round 2 (as many `LeakedRequest`s again); the
//                           `InflightRequest`s were released, so they are in s2 only
//
// Every round also allocates and drops twice as many short-lived `Request`s (garbage, collected
// before the snapshot). So the objects allocated between s1 and s2 and still alive in s3 are
// exactly round 1's leak: LEAKS_PER_ROUND `LeakedRequest`s + as many strings, `headers` arrays and
// their element stores, plus the grown backing stores of `leaks` and `handleMap`. Object ids are
// stable between the three snapshots (same isolate).
//
// SIZE_HINT is the number of steady `Item`s (`3m`, `800k`, `150000`) or the preset `1.3g`
// (default): 2.9M items and 240k leaks per round, giving files of about 1.3 GB each (the
// largest, s3, stays below 1.4 GB). LEAKS_PER_ROUND defaults to 10% of the items for other
// sizes. Files are mode 0600.
//
// Measured on Node 20.20 (2 cores, shared with a Rust build), see bench/README.md.
//
// Re-executes itself with --expose-gc and a larger --max-old-space-size; runs a full GC before
// every snapshot. Progress, timings and peak RSS go to stderr; the three paths go to stdout.

const fs = require('node:fs');
const path = require('node:path');
const v8 = require('node:v8');
const { spawnSync } = require('node:child_process');

const PRESETS = { '1.3g': { items: 2_900_000, leaks: 240_000 } };
const MAP_CHUNK = 1_000_000; // a Map holds at most 2^24 entries; stay far below
const GROUP = 100;

// The leak: module-level, like a forgotten registry in a real service.
const leaks = [];
const handleMap = new Map();
// Requests in flight at the time of s2, finished (released) before s3.
let inflight = [];
let steady = null;

function usage(message) {
  console.error(
    `${message}\nusage: node bench/gen-leak-series.js OUTDIR [SIZE_HINT] [LEAKS_PER_ROUND]   ` +
      `(SIZE_HINT: steady items like 3m / 800k, or the preset 1.3g, the default)`,
  );
  process.exit(2);
}

function parseCount(hint, what) {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(hint);
  if (!m) usage(`invalid ${what} ${JSON.stringify(hint)}`);
  const scale = { '': 1, k: 1e3, m: 1e6 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * scale);
}

function parseSize(hint, leakArg) {
  const preset = PRESETS[hint.toLowerCase()];
  const items = preset ? preset.items : parseCount(hint, 'SIZE_HINT');
  let leaksPerRound = preset ? preset.leaks : Math.max(1, Math.round(items / 10));
  if (leakArg !== undefined) leaksPerRound = parseCount(leakArg, 'LEAKS_PER_ROUND');
  return { items, leaksPerRound };
}

// JS heap needed: ~200 bytes per item and ~250 per leaked request, with room for the GC.
function heapLimitMb(items, leaksPerRound) {
  return Math.max(4096, Math.ceil((items * 400 + leaksPerRound * 2 * 500) / 2 ** 20) + 2048);
}

// A flat (not concatenated) one-byte string.
function flat(s) {
  return Buffer.from(s, 'latin1').toString('latin1');
}

class Item {
  constructor(i) {
    this.id = i;
    this.name = 'item' + i;
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

class LeakedRequest {
  constructor(id, round) {
    this.id = id;
    this.url = flat(`/api/v1/sessions/${round}/requests/${id}`);
    this.headers = [id, round, 200];
    this.startedAt = round * 1000;
  }
}

class InflightRequest {
  constructor(id) {
    this.id = id;
    this.url = flat(`/api/v1/inflight/${id}`);
    this.chunks = [id];
  }
}

class Request {
  constructor(id) {
    this.id = id;
    this.url = '/api/v1/ping/' + id;
    this.headers = [id];
  }
}

function buildSteady(n) {
  const maps = [];
  const groups = [];
  const callbacks = [];
  let map = null;
  let group = null;
  let prev = null;
  for (let i = 0; i < n; i++) {
    if (i % MAP_CHUNK === 0) maps.push((map = new Map()));
    if (i % GROUP === 0) groups.push((group = new Group(groups.length)));
    const item = new Item(i);
    if (prev) prev.next = item;
    prev = item;
    map.set(i, item);
    group.members.push(item);
    if (i % 10 === 0) callbacks.push(() => item.id);
  }
  return { maps, groups, callbacks };
}

let nextRequestId = 0;
let shortLived = 0;

// One round of "traffic": `count` requests leak, twice as many are short-lived garbage, and
// `inflightCount` stay in flight (retained) until the next round.
function leakRound(round, count, inflightCount) {
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < 2; k++) {
      const r = new Request(nextRequestId++);
      shortLived += r.headers.length; // uses the object so the allocation is not optimised away
    }
    const id = nextRequestId++;
    const req = new LeakedRequest(id, round);
    leaks.push(req);
    handleMap.set(id, req);
  }
  inflight = [];
  for (let i = 0; i < inflightCount; i++) inflight.push(new InflightRequest(nextRequestId++));
}

const gb = (bytes) => (bytes / 1e9).toFixed(3) + ' GB';
const peakRss = () => (process.resourceUsage().maxRSS / 2 ** 20).toFixed(2) + ' GB';
const rss = () => (process.memoryUsage().rss / 2 ** 30).toFixed(2) + ' GB';
const secs = (from) => (Number(process.hrtime.bigint() - from) / 1e9).toFixed(1) + 's';

function snapshot(dir, name) {
  const file = path.join(dir, `${name}.heapsnapshot`);
  const tmp = path.join(dir, `.${name}.heapsnapshot.partial`);
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
  const t = process.hrtime.bigint();
  fs.writeFileSync(tmp, '', { mode: 0o600 }); // created 0600 before V8 writes into it
  v8.writeHeapSnapshot(tmp);
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  console.error(`wrote ${file}: ${gb(fs.statSync(file).size)} in ${secs(t)}; RSS ${rss()}, peak RSS so far ${peakRss()}`);
  return file;
}

function main() {
  const [out, hint = '1.3g', leakArg] = process.argv.slice(2);
  if (!out) usage('missing OUTDIR');
  const { items, leaksPerRound } = parseSize(hint, leakArg);
  const inflightCount = Math.round(leaksPerRound / 10);

  const needMb = heapLimitMb(items, leaksPerRound);
  const haveMb = v8.getHeapStatistics().heap_size_limit / 2 ** 20;
  if ((haveMb < needMb || typeof globalThis.gc !== 'function') && !process.env.GEN_LEAK_SERIES_CHILD) {
    const args = ['--expose-gc', `--max-old-space-size=${Math.max(needMb, Math.ceil(haveMb))}`, __filename, out, hint];
    if (leakArg !== undefined) args.push(leakArg);
    const child = spawnSync(process.execPath, args, {
      stdio: 'inherit',
      env: { ...process.env, GEN_LEAK_SERIES_CHILD: '1' },
    });
    process.exit(child.status ?? 1);
  }

  const dir = path.resolve(out);
  fs.mkdirSync(dir, { recursive: true });
  const t0 = process.hrtime.bigint();
  steady = buildSteady(items);
  globalThis.benchData = steady;
  console.error(`built ${items} steady items in ${secs(t0)} (RSS ${rss()}); ${leaksPerRound} leaks per round, ${inflightCount} in flight at s2`);
  const files = [snapshot(dir, 's1')];

  let t = process.hrtime.bigint();
  leakRound(1, leaksPerRound, inflightCount);
  console.error(`round 1: ${leaks.length} LeakedRequests, ${inflight.length} InflightRequests, ${shortLived} short-lived Requests so far, in ${secs(t)}`);
  files.push(snapshot(dir, 's2'));

  t = process.hrtime.bigint();
  leakRound(2, leaksPerRound, 0);
  console.error(`round 2: ${leaks.length} LeakedRequests, ${inflight.length} InflightRequests, ${shortLived} short-lived Requests so far, in ${secs(t)}`);
  files.push(snapshot(dir, 's3'));

  console.error(
    `done in ${secs(t0)}; peak RSS ${peakRss()}; leaked between s1 and s2 and alive in s3: ` +
      `${leaksPerRound} LeakedRequests (+ as many url strings, headers arrays and element stores)`,
  );
  for (const f of files) console.log(f);
}

main();
