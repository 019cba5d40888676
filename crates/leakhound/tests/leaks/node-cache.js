// leakhound-expect: {"leak": true, "class": "{v}", "owner": "data", "owner_class": "Object", "holder": "NodeCache.data", "binding": "quoteCache", "binding_line": 14}
// Leak (npm node-cache 5): GET /quote caches the upstream quote in a NodeCache
// under a key that includes the request id, and the cache has no TTL
// (stdTTL 0, the default) and no maxKeys: every request adds an entry that is
// never read again and never expires. NodeCache keeps its entries in the
// plain object `data` (used as a dictionary) and runs a check timer
// (`checkperiod`) whose bound callback also reaches the cache.
'use strict';
const NodeCache = require('node-cache');
const { run } = require('./lib/harness');

// Quotes by "symbol:request" (BUG: the request id makes every key unique).

const quoteCache = new NodeCache({ checkperiod: 600 });

function fetchQuote(symbol, i) {
  return { symbol, bid: 100 + (i % 17), ask: 101 + (i % 13), venue: 'XNAS', at: Date.now() };
}

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const symbol = url.searchParams.get('s');
  const key = `${symbol}:${req.headers['x-request-id']}`;
  let quote = quoteCache.get(key);
  if (quote === undefined) {
    quote = fetchQuote(symbol, Number(req.headers['x-request-id']));
    quoteCache.set(key, quote);
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(quote));
}

run({
  handler,
  request: (i) => ({ path: `/quote?s=SYM${i % 40}`, headers: { 'x-request-id': String(i) } }),
  warmup: 300,
  perRound: 1500,
  onExit: () => quoteCache.close(),
});
