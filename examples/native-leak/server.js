// An HTTP service whose native addon keeps a 4 KB record per /login and never frees it.
// /work is the clean twin: the same record, freed. Build the addon first: ./build.sh
// Usage: node server.js [PORT] (0 = any free port; the port is printed).
'use strict';
const http = require('http');
const path = require('path');
const addon = require(process.env.ADDON || path.join(__dirname, 'addon.node'));

let next = 0;

function handleLogin(res) {
  const id = addon.remember(next++);
  res.end(`session ${id}\n`);
}

function handleWork(res) {
  res.end(`work ${addon.scratch(next++)}\n`);
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/login')) return handleLogin(res);
  if (req.url.startsWith('/work')) return handleWork(res);
  res.statusCode = 404;
  res.end();
});
server.listen(Number(process.argv[2] || 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
