'use strict';
// A small "application" with typical leaks: an EventEmitter collecting
// listeners, an unbounded cache, pending timers and promises holding
// closures, AbortControllers, and Node internals that come with them.
const { run } = require('./lib/snapshot');
const { EventEmitter } = require('node:events');

class Session {
  constructor(id) {
    this.id = id;
    this.createdAt = new Date(1700000000000 + id);
    this.buffer = Buffer.alloc(256, id % 256);
    this.history = [];
  }
}

class Cache {
  constructor() {
    this.entries = new Map();
    this.hits = 0;
  }
  get(key, make) {
    let v = this.entries.get(key);
    if (!v) this.entries.set(key, (v = make()));
    else this.hits++;
    return v;
  }
}

run((keep) => {
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  keep.bus = bus;
  keep.cache = new Cache();
  keep.sessions = [];
  for (let i = 0; i < 3000; i++) {
    const s = new Session(i);
    keep.sessions.push(s);
    bus.on('tick', () => s.history.push(Date.now()));
    keep.cache.get('session:' + i, () => ({ session: s, rendered: `<div id="s${i}">${i}</div>` }));
  }
  keep.timers = Array.from({ length: 200 }, (_, i) => {
    const payload = { big: 'x'.repeat(200) + i };
    return setTimeout(() => payload, 1e9).unref();
  });
  keep.intervals = Array.from({ length: 10 }, (_, i) => setInterval(() => i, 1e9).unref());
  keep.pending = Array.from({ length: 300 }, (_, i) => {
    const data = { i, chunk: new Array(16).fill(i) };
    return new Promise((resolve) => {
      keep.resolvers = keep.resolvers || [];
      keep.resolvers.push(() => resolve(data));
    }).then((d) => d.i);
  });
  keep.controllers = Array.from({ length: 100 }, () => {
    const ac = new AbortController();
    ac.signal.addEventListener('abort', () => {});
    return ac;
  });
  keep.urls = Array.from({ length: 100 }, (_, i) => new URL(`https://example.invalid/p/${i}?q=${i}`));
  keep.textEncoder = new TextEncoder();
  keep.encoded = keep.textEncoder.encode('hello '.repeat(1000));
  process.on('warning', () => keep.sessions.length);
});
