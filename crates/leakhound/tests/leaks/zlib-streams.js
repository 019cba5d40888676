// leakhound-expect: {"leak": true, "class": "Deflate", "owner": "openExports", "owner_class": "Map", "holder": "openExports", "binding": "openExports", "binding_line": 17, "native": true, "holder_line": 17}
// Leak (node:zlib): GET /export starts a compressed export: a Deflate stream
// registered in `openExports` until the client has downloaded it. This route
// answers with the first compressed chunk and then forgets the export: the
// stream is never ended, never destroyed and never removed from the Map.
// Each Deflate keeps zlib's native state (its window and hash tables,
// ~256 kB, allocated by zlib outside the JS heap), so the process grows by
// far more than its JS heap shows. The 1,000 error listeners share one scope: a report that
// counts the scope's retained size once per listener would give a size larger than the
// process.
'use strict';
const zlib = require('node:zlib');
const { run } = require('./lib/harness');

// Exports in progress, by id.

const openExports = new Map();

// Every export stream reports its errors: one listener per stream, all of them sharing this
// module's scope (which holds `openExports`, and through it every stream).
function reportErrors(stream) {
  stream.on('error', (err) => console.error(`export failed: ${err.message}`));
}

function handler(req, res) {
  const id = req.headers['x-export'];
  const deflate = zlib.createDeflate({ level: 6 });
  openExports.set(id, deflate);
  reportErrors(deflate);
  deflate.write(`export ${id}\n`.repeat(20));
  deflate.flush(() => {
    const first = deflate.read();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(first);
  }); // BUG: the export is never finished (deflate.end()) nor removed
}

run({
  handler,
  request: (i) => ({ path: '/export', headers: { 'x-export': `exp-${i}` } }),
  warmup: 100,
  perRound: 450,
});
