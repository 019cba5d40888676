// leakhound-expect: {"leak": true, "class": "CallContext", "owner": "handleMap", "owner_class": "Map", "holder": "handleMap", "binding": "handleMap", "binding_line": 22, "holder_line": 22}
// Leak: every GET /call registers a CallContext (url, a copy of the headers,
// start time, reply callback) in the module-level Map `handleMap`, keyed by
// the numeric call id, so that the backend's answer can find its caller. The
// cleanup after the answer deletes `String(ctx.id)`, a key that was never
// set: the delete is silently lost and every context (with its callback, and
// through it the request and response objects) stays in the Map forever.
'use strict';
const { run } = require('./lib/harness');

class CallContext {
  constructor(id, req, callback) {
    this.id = id;
    this.url = req.url;
    this.method = req.method;
    this.headers = { ...req.headers };
    this.startedAt = process.hrtime.bigint();
    this.callback = callback;
  }
}

const handleMap = new Map();
let nextCallId = 0;

// The "backend": answers a call asynchronously by its id.
function backendCall(callId, url) {
  setImmediate(() => onBackendReply(callId, { url, value: callId * 2 }));
}

function onBackendReply(callId, result) {
  const ctx = handleMap.get(callId);
  if (!ctx) return;
  ctx.callback(null, result);
  handleMap.delete(String(ctx.id)); // BUG: the key is a number, not a string
}

function handler(req, res) {
  const callId = ++nextCallId;
  const ctx = new CallContext(callId, req, (err, result) => {
    const elapsed = Number(process.hrtime.bigint() - ctx.startedAt);
    res.writeHead(err ? 502 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: callId, result, elapsed: elapsed > 0 }));
  });
  handleMap.set(callId, ctx);
  backendCall(callId, req.url);
}

run({
  handler,
  request: (i) => ({ path: `/call?op=lookup&n=${i}`, headers: { 'x-tenant': 'tenant-' + (i % 7) } }),
  warmup: 300,
  perRound: 1000,
});
