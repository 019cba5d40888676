// An HTTP service for the native tracker's overhead under load (bench/native-overhead.sh): each
// request parses a JSON body-like string, builds an object, serializes it and hashes it, as an
// API handler would. Usage: node native-http-server.js PORT
'use strict';
const http = require('http');
const crypto = require('crypto');

const template = JSON.stringify({ user: 'someone', items: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `item-${i}` })) });

function handle(req, res) {
  const order = JSON.parse(template);
  order.at = Date.now();
  order.total = order.items.reduce((s, it) => s + it.id, 0);
  const body = JSON.stringify(order);
  const etag = crypto.createHash('sha1').update(body).digest('hex');
  res.writeHead(200, { 'content-type': 'application/json', etag });
  res.end(body);
}

const server = http.createServer(handle);
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
