'use strict';
// A small HTTP service with two memory leaks, modelled on real incidents
// (see ../../README.md, "run the example"). No npm dependencies; Node >= 20.
//
//   GET /status?test=N   the fast leak: every call leaves a CallContext in `handleMap`
//   GET /status?early=1  the same route returning before the backend call: no leak
//   GET /report          the slow leak: appends a few entries to the module-level `leaks` array
//   GET /healthz         no leak
//   GET /stats           JSON: handleMap size, leaks length, process.memoryUsage()
//
// Run: node examples/leaky-server/server.js [PORT]   (or PORT=... ; 0 = ephemeral)
// It listens on 127.0.0.1 only.

const http = require('node:http');

// Per-call context for calls in flight to the backing services, keyed by request id.
// The cleanup (`releaseContext`) used to run from the backend callback; a refactor dropped
// that call, so every /status request that reaches the backend leaves its context here.
const handleMap = new Map();

// Audit entries appended by /report and never trimmed.
const leaks = [];

let nextRequestId = 1;

class CallContext {
  constructor(requestId, req) {
    this.requestId = requestId;
    this.route = req.url;
    this.startedAt = Date.now();
    this.finishedAt = 0;
    this.headers = { ...req.headers };
    // Request framing kept for the backend protocol: ~1 KB outside the JS heap.
    this.payload = Buffer.alloc(1024);
    this.payload.write(`${req.method} ${req.url}\n${JSON.stringify(this.headers)}`);
    this.status = null;
    const onDone = (err, status) => {
      this.finishedAt = Date.now();
      this.status = err ? { ok: false, error: String(err) } : status;
    };
    this.onDone = onDone;
  }
}

function releaseContext(requestId) {
  handleMap.delete(requestId);
}

// Stands in for a network call to a backing service.
function callBackend(ctx, callback) {
  setImmediate(() => {
    callback(null, { ok: true, backend: 'inventory', requestId: ctx.requestId });
  });
}

function handleStatus(req, res, url) {
  if (url.searchParams.has('early')) {
    sendJson(res, 200, { ok: true, early: true });
    return;
  }
  const ctx = new CallContext(nextRequestId++, req);
  handleMap.set(ctx.requestId, ctx);
  callBackend(ctx, (err, status) => {
    ctx.onDone(err, status);
    // Lost in the refactor: releaseContext(ctx.requestId);
    sendJson(res, err ? 502 : 200, ctx.status);
  });
}

function handleReport(req, res, url) {
  const at = Date.now();
  for (let i = 0; i < 20; i++) {
    leaks.push({ at, seq: leaks.length, query: url.search, note: `report ${at}/${i}` });
  }
  sendJson(res, 200, { ok: true, entries: leaks.length });
}

function sendJson(res, code, body) {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function onRequest(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  switch (url.pathname) {
    case '/status':
      return handleStatus(req, res, url);
    case '/report':
      return handleReport(req, res, url);
    case '/healthz':
      return sendJson(res, 200, { ok: true });
    case '/stats':
      return sendJson(res, 200, {
        handleMap: handleMap.size,
        leaks: leaks.length,
        memory: process.memoryUsage(),
      });
    default:
      return sendJson(res, 404, { ok: false, error: 'not found' });
  }
}

// Starts the service on 127.0.0.1:port (0 = ephemeral); resolves to the http.Server.
function start(port) {
  const server = http.createServer(onRequest);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function stats() {
  return { handleMap: handleMap.size, leaks: leaks.length };
}

module.exports = { start, stats, CallContext, releaseContext };

if (require.main === module) {
  const arg = process.argv[2] ?? process.env.PORT ?? '3000';
  const port = Number(arg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`invalid port ${JSON.stringify(arg)}: give a number from 0 to 65535`);
    process.exit(2);
  }
  start(port).then(
    (server) => console.log(`listening on http://127.0.0.1:${server.address().port}`),
    (err) => {
      console.error(`cannot listen on 127.0.0.1:${port}: ${err.message}`);
      process.exit(1);
    },
  );
}
