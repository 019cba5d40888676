// leakhound-expect: {"leak": false}
// Control, no leak: GET /item fills a bounded LRU cache (a Map of at most
// MAX_ENTRIES CacheItems, oldest evicted first) with a unique key per
// request. The warm-up sends more than MAX_ENTRIES requests, so the cache is
// full before the first snapshot; after that every insert evicts one item
// and the heap stays flat even though every snapshot holds different items.
'use strict';
const { run } = require('./lib/harness');

const MAX_ENTRIES = 200;

class CacheItem {
  constructor(key, value) {
    this.key = key;
    this.value = value;
    this.storedAt = new Date();
  }
}

class LruCache {
  constructor(max) {
    this.max = max;
    this.entries = new Map();
  }
  get(key) {
    const item = this.entries.get(key);
    if (item !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, item);
    }
    return item;
  }
  set(key, item) {
    this.entries.delete(key);
    this.entries.set(key, item);
    while (this.entries.size > this.max) {
      this.entries.delete(this.entries.keys().next().value);
    }
  }
}

const cache = new LruCache(MAX_ENTRIES);

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const key = url.searchParams.get('key');
  let item = cache.get(key);
  if (!item) {
    item = new CacheItem(key, { rendered: `<li data-key="${key}">${key.toUpperCase()}</li>` });
    cache.set(key, item);
  }
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(item.value.rendered);
}

run({
  handler,
  request: (i) => `/item?key=item-${i}`,
  warmup: 500,
  perRound: 1500,
});
