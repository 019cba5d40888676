// leakhound-expect: {"leak": true, "class": "EE", "owner": "price", "owner_class": "Array", "holder": "Events.price", "binding": "prices", "binding_line": 13, "headline": "Subscription"}
// Leak (npm eventemitter3 5): each GET /watch subscribes a listener to the
// module-level price feed (an eventemitter3 EventEmitter) to push the next
// price change to the client, and never removes it after the response is
// sent. eventemitter3 keeps listeners as {fn, context, once} records in
// `_events.price` (an array once there are two), so every request's
// listener and the subscription it closes over stay alive.
'use strict';
const EventEmitter = require('eventemitter3');
const { run } = require('./lib/harness');

// Price changes, published by the feed handler.
const prices = new EventEmitter();

class Subscription {
  constructor(client, symbol) {
    this.client = client;
    this.symbol = symbol;
    this.since = Date.now();
    this.sent = 0;
  }
}

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const sub = new Subscription(req.headers['x-client'], url.searchParams.get('s'));
  prices.on('price', (change) => {
    if (change.symbol === sub.symbol) sub.sent++;
  }); // BUG: never removed (should be once(), or off() when the client leaves)
  prices.emit('price', { symbol: sub.symbol, price: 10 });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ watching: sub.symbol }));
}

run({
  handler,
  request: (i) => ({ path: `/watch?s=S${i % 20}`, headers: { 'x-client': `c${i}` } }),
  warmup: 300,
  perRound: 600,
});
