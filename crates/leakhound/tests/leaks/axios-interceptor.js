// leakhound-expect: {"leak": true, "owner": "handlers", "owner_class": "Array", "holder": "InterceptorManager", "binding": "upstream", "binding_line": 29, "headline": "RequestStamp"}
// Leak (npm axios 1): the order service calls its inventory backend through
// one shared axios instance, and each request registers a request
// interceptor to stamp the call with its request id
// (`upstream.interceptors.request.use(...)`) but never ejects it. The
// instance's InterceptorManager keeps every handler, and each handler's
// closure keeps its request's id and tenant alive; every call also runs all
// the interceptors registered so far.
'use strict';
const http = require('node:http');
const axios = require('axios');
const { run } = require('./lib/harness');

// The inventory backend, in this process for the test.
const backend = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ sku: req.url.slice(1), stock: 7 }));
});
const backendReady = new Promise((resolve) => backend.listen(0, '127.0.0.1', resolve));

class RequestStamp {
  constructor(id, tenant) {
    this.id = id;
    this.tenant = tenant;
    this.at = new Date();
  }
}

const upstream = axios.create({ timeout: 2000 });

async function handler(req, res) {
  await backendReady;
  upstream.defaults.baseURL = `http://127.0.0.1:${backend.address().port}`;
  const stamp = new RequestStamp(req.headers['x-request-id'], req.headers['x-tenant']);
  // BUG: registers one more interceptor per request and never ejects it.
  upstream.interceptors.request.use((config) => {
    config.headers['x-request-id'] = stamp.id;
    return config;
  });
  const { data } = await upstream.get(`/sku-${Number(stamp.id) % 50}`);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ order: stamp.id, stock: data.stock }));
}

run({
  handler,
  request: (i) => ({ path: '/order', headers: { 'x-request-id': String(i), 'x-tenant': `t${i % 9}` } }),
  warmup: 100,
  perRound: 400,
  onExit: () => {
    backend.closeAllConnections();
    return new Promise((resolve) => backend.close(resolve));
  },
});
