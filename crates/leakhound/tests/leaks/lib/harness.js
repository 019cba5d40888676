'use strict';
// Shared driver for the leak scenarios:
//   node tests/leaks/<scenario>.js OUTDIR
//
// Starts the scenario's HTTP service (node:http on 127.0.0.1, port 0), then
// drives it with real HTTP requests from the same process (node:http client,
// keep-alive agent, at most CONCURRENCY requests in flight):
//
//   warm-up round            (`warmup` requests: compiles the code paths,
//                             fills pools and caches)
//   GC, OUTDIR/s1.heapsnapshot   baseline
//   load round               (`perRound` requests)
//   GC, OUTDIR/s2.heapsnapshot   target
//   load round               (`perRound` requests)
//   GC, OUTDIR/s3.heapsnapshot   final
//
// then closes the server and the agent and exits 0. The three snapshots are
// what DevTools' "three snapshot technique" wants: objects that are new in
// s2 (not in s1) and still alive in s3 are the leak candidates.
// Snapshot files are written with mode 0600. OUTDIR is created if missing
// (its parent must exist). Any error: message on stderr, exit code 1.
// Works with plain `node` (re-runs itself with --expose-gc, see below) and
// with `node --expose-gc`. Runs in about 1.5–2 s per scenario.
//
// Request numbers (`i` below) run 0, 1, 2, … over all rounds, so a scenario
// can make every request unique (ids, cache keys).

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const v8 = require('node:v8');

const CONCURRENCY = 8;

// The harness forces a full GC before each snapshot, so it needs `gc()`.
// Without `node --expose-gc`, it runs the scenario again in a child process
// with that flag and exits with the child's status. (The alternative,
// v8.setFlagsFromString('--expose-gc') + vm.runInNewContext('gc'), would
// leave a second NativeContext in every snapshot.) This happens while the
// scenario is still at its `require('./lib/harness')`, before its own code.
if (typeof globalThis.gc !== 'function') {
  const { spawnSync } = require('node:child_process');
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit' },
  );
  if (child.error) {
    process.stderr.write(`${process.argv[1]}: cannot re-run with --expose-gc: ${child.error.message}\n`);
    process.exit(1);
  }
  process.exit(child.status === null ? 1 : child.status);
}

function fail(err) {
  process.stderr.write(`${process.argv[1]}: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}

// Reads the whole response body as a string.
function readBody(stream) {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => (text += chunk));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

// One request. `spec` is { method, path, headers, body }.
function request(port, agent, spec) {
  return new Promise((resolve, reject) => {
    const body = spec.body === undefined ? undefined : Buffer.from(spec.body);
    const headers = { ...(spec.headers || {}) };
    if (body) headers['content-length'] = body.length;
    const req = http.request(
      { host: '127.0.0.1', port, agent, method: spec.method || 'GET', path: spec.path, headers },
      (res) => {
        readBody(res).then((text) => {
          if (res.statusCode !== 200) {
            reject(new Error(`${spec.method || 'GET'} ${spec.path}: HTTP ${res.statusCode}: ${text}`));
          } else {
            resolve(text);
          }
        }, reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// Sends requests first..first+count-1, at most CONCURRENCY at a time.
async function round(port, agent, makeRequest, first, count) {
  let next = first;
  const end = first + count;
  async function worker() {
    while (next < end) {
      const i = next++;
      const spec = makeRequest(i);
      await request(port, agent, typeof spec === 'string' ? { path: spec } : spec);
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, worker));
}

// Lets pending callbacks (socket 'free', response 'finish' cleanup, …) run.
function settle() {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

// options:
//   handler(req, res)  the service; may return a promise. Must answer 200.
//   request(i)         the i-th request: a path string or
//                      { method, path, headers, body }.
//   warmup             requests before s1 (default 300).
//   perRound           requests between s1 and s2 and between s2 and s3
//                      (default 1500).
//   onExit()           optional cleanup before the process exits.
function run(options) {
  const { handler, request: makeRequest, warmup = 300, perRound = 1500, onExit } = options;
  const outDir = process.argv[2];
  if (!outDir) {
    process.stderr.write(`usage: node ${process.argv[1]} OUTDIR\n`);
    process.exit(1);
  }

  let handlerError = null;
  const server = http.createServer((req, res) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((err) => {
        handlerError = handlerError || err;
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err && err.message));
      });
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  async function main() {
    // OUTDIR may exist; its parent must. (Not `recursive: true`: Node's
    // recursive mkdir spins forever on a path under /proc, whose mkdir
    // answers ENOENT although the parent exists.)
    try {
      fs.mkdirSync(outDir);
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address();

    let sent = 0;
    await round(port, agent, makeRequest, sent, warmup);
    sent += warmup;
    for (let k = 1; k <= 3; k++) {
      if (k > 1) {
        await round(port, agent, makeRequest, sent, perRound);
        sent += perRound;
      }
      if (handlerError) throw handlerError;
      await settle();
      globalThis.gc();
      const file = v8.writeHeapSnapshot(path.join(outDir, `s${k}.heapsnapshot`));
      fs.chmodSync(file, 0o600);
    }

    if (onExit) await onExit();
    agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  main().then(() => process.exit(0), fail);
}

module.exports = { run };
