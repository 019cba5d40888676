// leakhound-expect: {"leak": true, "class": "PendingCall", "owner": "pending", "owner_class": "Map", "holder": "ReplyTracker.pending", "binding": "tracker", "binding_line": 38}
// Leak: the gateway tracks every call it forwards in a ReplyTracker, a class
// that keeps each pending call (with its timer deadline and reply callback)
// in the Map `pending` until the reply arrives. Replies for calls that were
// answered from the local cache never arrive, and nothing expires the
// entries, so every cached answer leaves a pending call behind.
'use strict';
const { run } = require('./lib/harness');

class PendingCall {
  constructor(id, route, reply) {
    this.id = id;
    this.route = route;
    this.deadline = Date.now() + 30_000;
    this.reply = reply;
  }
}

class ReplyTracker {
  constructor() {
    this.pending = new Map();
    this.answered = 0;
  }
  expect(id, route, reply) {
    this.pending.set(id, new PendingCall(id, route, reply));
  }
  answer(id, value) {
    const call = this.pending.get(id);
    if (!call) return;
    this.pending.delete(id);
    this.answered++;
    call.reply(value);
  }
}

// Calls forwarded to the backends, waiting for their replies.

const tracker = new ReplyTracker();
const cache = new Map([['/config', { ttl: 60 }]]);
let nextId = 0;

function handler(req, res) {
  const id = ++nextId;
  const send = (value) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  tracker.expect(id, req.url, send);
  if (cache.has(req.url)) {
    send(cache.get(req.url)); // BUG: the pending call is never answered nor removed
    return;
  }
  setImmediate(() => tracker.answer(id, { id, routed: true }));
}

run({
  handler,
  request: (i) => (i % 2 ? '/config' : `/route/${i}`),
  warmup: 300,
  perRound: 1500,
});
