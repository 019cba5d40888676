// leakhound-expect: {"leak": true, "class": "ReportEntry", "owner": "leaks", "owner_class": "Array", "holder": "leaks", "binding": "leaks", "binding_line": 18, "holder_line": 18}
// Leak: GET /report pushes one ReportEntry per request into the module-level
// array `leaks` ("keep the last reports for the debug page"), which nothing
// ever trims. Path: module Context --leaks--> Array --elements--> ReportEntry.
'use strict';
const { run } = require('./lib/harness');

class ReportEntry {
  constructor(id, url, userAgent) {
    this.id = id;
    this.url = url;
    this.userAgent = userAgent;
    this.receivedAt = new Date();
    this.summary = `report ${id} for ${url}`;
  }
}

const leaks = [];

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const id = url.searchParams.get('id');
  const entry = new ReportEntry(id, req.url, req.headers['user-agent'] || 'unknown');
  leaks.push(entry);
  const body = JSON.stringify({ ok: true, id: entry.id, summary: entry.summary });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
}

run({
  handler,
  request: (i) => ({ path: `/report?id=${i}`, headers: { 'user-agent': 'leakhound-test' } }),
  warmup: 300,
  perRound: 1500,
});
