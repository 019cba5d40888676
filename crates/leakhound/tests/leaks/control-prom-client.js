// leakhound-expect: {"leak": false}
// Control, no leak: the histogram of prom-client.js labelled by route only,
// a label with a handful of values: its series are all created during the
// warm-up, after which every request only updates their bucket counts.
'use strict';
const client = require('prom-client');
const { run } = require('./lib/harness');

const register = new client.Registry();

const upstreamLatency = new client.Histogram({
  name: 'upstream_latency_seconds',
  help: 'Latency of calls to the pricing service',
  labelNames: ['route'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  registers: [register],
});

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const end = upstreamLatency.startTimer({ route: `${url.pathname}/${url.searchParams.get('sku').slice(0, 2)}` });
  const price = { sku: url.searchParams.get('sku'), amount: 1999 };
  end();
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(price));
}

run({
  handler,
  request: (i) => ({ path: `/price?sku=A${i % 30}`, headers: { 'x-user': `user-${i}` } }),
  warmup: 300,
  perRound: 1500,
});
