// leakhound-expect: {"leak": true, "class": "{labels, bucketValues}", "owner": "hashMap", "owner_class": "Object", "holder": "Histogram.hashMap", "binding": "upstreamLatency", "binding_line": 14}
// Leak (npm prom-client 15): the upstream latency histogram has a `user`
// label, and every request observes it with its caller's id. Each new label
// value makes a new time series (an entry of the histogram's `hashMap`,
// keyed by the label set, with its own bucket counts) that is kept for the
// life of the process: unbounded label cardinality.
'use strict';
const client = require('prom-client');
const { run } = require('./lib/harness');

const register = new client.Registry();

// Latency of the calls to the pricing service, by route and caller.
const upstreamLatency = new client.Histogram({
  name: 'upstream_latency_seconds',
  help: 'Latency of calls to the pricing service',
  labelNames: ['route', 'user'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  registers: [register],
});

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const end = upstreamLatency.startTimer({ route: url.pathname });
  const price = { sku: url.searchParams.get('sku'), amount: 1999 };
  end({ user: req.headers['x-user'] }); // BUG: one series per user id
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(price));
}

run({
  handler,
  request: (i) => ({ path: `/price?sku=A${i % 30}`, headers: { 'x-user': `user-${i}` } }),
  warmup: 300,
  perRound: 1500,
});
