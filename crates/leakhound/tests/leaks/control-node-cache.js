// leakhound-expect: {"leak": false}
// Control, no leak: the quote cache of node-cache.js, keyed by symbol only
// and with a bound (maxKeys): after the warm-up every symbol is cached and
// the entries are replaced in place.
'use strict';
const NodeCache = require('node-cache');
const { run } = require('./lib/harness');

const quoteCache = new NodeCache({ stdTTL: 3600, checkperiod: 600, maxKeys: 100 });

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const symbol = url.searchParams.get('s');
  const i = Number(req.headers['x-request-id']);
  const quote = { symbol, bid: 100 + (i % 17), ask: 101 + (i % 13), venue: 'XNAS', at: Date.now() };
  quoteCache.set(symbol, quote);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(quoteCache.get(symbol)));
}

run({
  handler,
  request: (i) => ({ path: `/quote?s=SYM${i % 40}`, headers: { 'x-request-id': String(i) } }),
  warmup: 300,
  perRound: 1500,
  onExit: () => quoteCache.close(),
});
