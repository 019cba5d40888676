// leakhound-expect: {"leak": true, "class": "Buffer", "owner": "uploads", "owner_class": "Set", "holder": "uploads", "binding": "uploads", "binding_line": 10, "native": true, "holder_line": 10}
// Leak: POST /upload copies the request body into a fresh Buffer and adds it
// to the module-level Set `uploads`, the queue of a background uploader
// that was never started; nothing ever deletes from it. Buffer.alloc() of
// 1 KiB is not pooled, so every Buffer has its own ArrayBuffer and backing
// store (outside the JS heap, but counted in the snapshot's native sizes).
'use strict';
const { run } = require('./lib/harness');

const uploads = new Set();
const BODY_SIZE = 1024;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(chunks));
    req.on('error', reject);
  });
}

async function handler(req, res) {
  const chunks = await readBody(req);
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const data = Buffer.alloc(length);
  let offset = 0;
  for (const chunk of chunks) offset += chunk.copy(data, offset);
  uploads.add(data); // BUG: the uploader that would drain this never runs
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ queued: uploads.size, bytes: length }));
}

run({
  handler,
  request: (i) => ({
    method: 'POST',
    path: '/upload',
    headers: { 'content-type': 'application/octet-stream' },
    body: `file-${i}:`.padEnd(BODY_SIZE, String.fromCharCode(97 + (i % 26))),
  }),
  warmup: 300,
  perRound: 1500,
});
