'use strict';
// Usage: node examples/leaky-server/snapshot.js OUT.heapsnapshot [REQUESTS]
//        node examples/leaky-server/snapshot.js OUTDIR [REQUESTS]
//
// Starts the leaky server in this process on an ephemeral 127.0.0.1 port, sends it REQUESTS
// (default 2000) GET /status requests plus one GET /report per 20 of them, with bounded
// concurrency, then writes a heap snapshot to OUT (mode 0600), prints its path and exits.
// The snapshot then holds exactly REQUESTS `CallContext` instances, retained by `handleMap`.
//
// Given a directory instead, it writes the three snapshots of a leak hunt: OUTDIR/s1.heapsnapshot
// after a warm-up round (the baseline), then s2 and s3 after one more round of REQUESTS each,
// and prints the three paths.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const v8 = require('node:v8');
const { start, stats } = require('./server.js');

const CONCURRENCY = 16;

function usage(message) {
  console.error(`${message}\nusage: node examples/leaky-server/snapshot.js OUT.heapsnapshot [REQUESTS]`);
  process.exit(2);
}

function get(agent, port, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`GET ${urlPath}: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function drive(port, paths) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      await get(agent, port, paths[next++]);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();
}

async function main() {
  const [out, countArg = '2000'] = process.argv.slice(2);
  if (!out) usage('missing OUT.heapsnapshot');
  const requests = Number(countArg);
  if (!Number.isInteger(requests) || requests < 0) usage(`invalid REQUESTS ${JSON.stringify(countArg)}: give a whole number`);

  const paths = [];
  for (let i = 1; i <= requests; i++) {
    paths.push(`/status?test=${i}`);
    if (i % 20 === 0) paths.push(`/report?batch=${i / 20}`);
  }

  const server = await start(0);
  if (!out.endsWith('.heapsnapshot')) {
    await series(server, path.resolve(out), paths);
    return;
  }
  await drive(server.address().port, paths);
  // Let the closed keep-alive sockets go before the snapshot, so it shows the leak, not the load.
  server.closeIdleConnections();
  await new Promise((resolve) => setTimeout(resolve, 100));

  const counts = stats();
  const file = path.resolve(out);
  v8.writeHeapSnapshot(file);
  fs.chmodSync(file, 0o600);
  console.error(`sent ${paths.length} requests; handleMap holds ${counts.handleMap} contexts, leaks holds ${counts.leaks} entries`);
  console.log(file);
  server.close();
  process.exit(0);
}

// Writes a snapshot after GC, mode 0600.
function snapshotTo(file) {
  if (typeof global.gc === 'function') global.gc();
  v8.writeHeapSnapshot(file);
  fs.chmodSync(file, 0o600);
  return file;
}

async function series(server, dir, paths) {
  fs.mkdirSync(dir, { recursive: true });
  const port = server.address().port;
  const files = [];
  for (let round = 0; round <= 3; round++) {
    await drive(port, paths.map((p) => `${p}&round=${round}`));
    server.closeIdleConnections();
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (round > 0) files.push(snapshotTo(path.join(dir, `s${round}.heapsnapshot`)));
  }
  const counts = stats();
  console.error(`4 rounds of ${paths.length} requests; handleMap holds ${counts.handleMap} contexts, leaks holds ${counts.leaks} entries`);
  console.log(files.join('\n'));
  server.close();
  process.exit(0);
}

main().catch((err) => {
  console.error(`snapshot.js: ${err.message}`);
  process.exit(1);
});
