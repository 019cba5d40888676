// leakhound-expect: {"leak": true, "owner_class": "Array", "holder": "Sink._events", "binding": "sink", "binding_line": 32, "headline": "RequestLogger"}
// Leak (node:stream): every request gets its own RequestLogger, a Transform
// that stamps each line with the request id, piped into the process-wide log
// sink. The logger is never ended, so pipe() never cleans up: the sink keeps
// the listeners pipe() added to it (unpipe, error, close, finish, drain),
// each closing over the logger and its stream state, for every request ever
// served.
'use strict';
const { Transform, Writable } = require('node:stream');
const { run } = require('./lib/harness');

class RequestLogger extends Transform {
  constructor(requestId) {
    super();
    this.requestId = requestId;
    this.lines = 0;
  }
  _transform(chunk, encoding, callback) {
    this.lines++;
    callback(null, `[${this.requestId}] ${chunk}`);
  }
}

class Sink extends Writable {
  _write(chunk, encoding, callback) {
    this.bytes = (this.bytes || 0) + chunk.length;
    callback();
  }
}

// Where all the request logs go.
const sink = new Sink();
sink.setMaxListeners(0);

function handler(req, res) {
  const log = new RequestLogger(req.headers['x-request-id']);
  log.pipe(sink); // BUG: never log.end(): pipe() keeps its listeners on the sink
  log.write(`GET ${req.url}\n`);
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok');
}

run({
  handler,
  request: (i) => ({ path: '/ping', headers: { 'x-request-id': `r${i}` } }),
  warmup: 300,
  perRound: 600,
});
